"""How sequence decay is computed (a numpy-free module: the command line lists the modes)."""
from __future__ import annotations

from typing import Literal

DecayMode = Literal["davis2017", "davis2017-numpy1", "fixed"]
DECAY_MODES: tuple[str, ...] = ("davis2017", "davis2017-numpy1", "fixed")
