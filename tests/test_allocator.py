"""refvps.allocator: large frame buffers come from the heap and stay mapped between frames."""
from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
import numpy as np
from refvps.allocator import keep_freed_memory

def heap_kib():
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("[heap]"):
                start, end = (int(v, 16) for v in line.split()[0].split("-"))
                return (end - start) // 1024
    return 0

applied = keep_freed_memory() if sys.argv[1] == "on" else False
before = heap_kib()
frames = [np.ones(1 << 20, np.uint8) for _ in range(3)]  # 1 MiB each: decoded 720p frames
print(applied, heap_kib() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_large_buffers_come_from_the_heap_once_applied():
    def probe(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True,
                             text=True, check=True).stdout.split()
        return out[0], int(out[1])

    applied, grown_on = probe("on")
    if applied != "True":
        pytest.skip("not glibc (no mallopt)")
    _, grown_off = probe("off")
    # glibc's default maps each 1 MiB block on its own (and unmaps it when freed); with the
    # thresholds raised they come from the heap, which keeps them mapped for the next frame.
    assert grown_off < 512
    assert grown_on >= 2048
