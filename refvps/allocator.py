"""Allocator settings for the scoring processes.

Scoring decodes and frees a few frame-sized arrays (hundreds of KiB) per frame. glibc returns
such memory to the system when it is freed and maps it again at the next frame, so a long
evaluation spends a tenth of its time in page faults (measured on the 12,000-frame MeViS
workload of benchmarks/bench_all.py: 133k faults, 1.1 s of system time). Raising the two
thresholds keeps that memory mapped between frames; the peak memory is unchanged.
"""
from __future__ import annotations

import sys

MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks below this come from the heap
TRIM_THRESHOLD = 128 << 20  # the free heap top kept before memory goes back to the system


def keep_freed_memory() -> bool:
    """Apply the settings above in this process (glibc on Linux; elsewhere nothing).

    Called by the command line and by evaluation workers, never on import: a library should
    not change the allocator of a program that merely imports it.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and \
        bool(mallopt(m_trim_threshold, TRIM_THRESHOLD))
