"""Files refvps writes atomically get the permissions a plain open() would give them, not
mkstemp's 0600 (annotation PNGs exported to a shared dataset, server zips, GIFs)."""
import os
import stat

import numpy as np

from refvps.annotate.storage import atomic_write_json
from refvps.fileio import atomic_write_text
from refvps.masks import write_binary_mask


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.txt"
    with open(plain, "w") as handle:
        handle.write("x")
    atomic_write_text(tmp_path / "summary.json", "{}")
    write_binary_mask(tmp_path / "00000.png", np.ones((4, 5), dtype=bool))
    atomic_write_json(tmp_path / "meta_expressions.json", {"videos": {}})
    assert _mode(tmp_path / "summary.json") == _mode(plain)
    assert _mode(tmp_path / "00000.png") == _mode(plain)
    assert _mode(tmp_path / "meta_expressions.json") == _mode(plain)
