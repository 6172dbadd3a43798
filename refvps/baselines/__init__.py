"""Models as segmenters: the protocol, the registry, reference segmenters, the runner.

``refvps.baselines`` imports nothing heavy; a model's code is imported when it is created::

    from refvps.baselines import create
    with create("center-box", frac=0.4) as model:
        masks = model.predict(frames, "the melting candle")   # T x H x W bool
"""
from __future__ import annotations

from refvps.baselines.protocol import (OutOfMemory, Segmenter, SegmenterInfo, VideoInput,
                                       check_masks, is_out_of_memory)
from refvps.baselines.registry import GROUP, create, registered, segmenter_class

__all__ = ["GROUP", "OutOfMemory", "Segmenter", "SegmenterInfo", "VideoInput", "check_masks",
           "create", "is_out_of_memory", "registered", "segmenter_class"]
