"""Turn a clip (video file or frames folder) into an annotation workspace.

The workspace holds every 24 fps frame as ``frames/<fffff>.jpg`` and ``workspace.json``, which
records the source, its timestamps, which source frame each output frame shows, and the 6 fps
annotation frames (every 4th output frame, offset 0). ``workspace.json`` is written last, so a
folder without it is an interrupted ingest and is redone.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2

from refvps.annotate.storage import atomic_write_bytes, atomic_write_json
from refvps.formats import (ANNOTATE_JPEG_QUALITY, REFVPS_ANNO_STRIDE, REFVPS_FPS,
                            WORKSPACE_FORMAT, WORKSPACE_FRAMES, WORKSPACE_INFO, frame_name)
from refvps.video import iter_source_frames, probe, resample_picks


def default_clip_id(source: str | Path) -> str:
    """A clip id from the source name: letters, digits, ``_`` and ``-`` only."""
    stem = Path(source).stem if Path(source).suffix else Path(source).name
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "clip"


def default_workspace(source: str | Path) -> Path:
    """``<source>.refvps`` next to the clip (a folder of frames gets ``<folder>.refvps``)."""
    source = Path(source)
    return source.parent / f"{source.name}.refvps"


def reopen_warnings(info: dict, source: str | Path, clip_id: str | None = None,
                    frames_fps: float | None = None) -> list[str]:
    """How an existing workspace differs from what the command line asked for."""
    warnings = []
    if Path(source).resolve() != Path(info["source"]):
        warnings.append(f"the workspace was made from {info['source']}, not {Path(source).resolve()}; "
                        f"it is reopened as it is (use another --workspace for a new clip)")
    if clip_id is not None and clip_id != info["clip_id"]:
        warnings.append(f"the workspace's clip id is {info['clip_id']!r}; --clip-id {clip_id!r} "
                        f"is ignored")
    if frames_fps is not None and info["source_kind"] == "frames" \
            and abs(float(frames_fps) - float(info["source_fps"])) > 1e-6:
        warnings.append(f"the workspace's frames were resampled from {info['source_fps']:g} fps; "
                        f"--frames-fps {frames_fps:g} is ignored (delete the workspace to "
                        f"re-ingest at the new rate)")
    return warnings


def ingest(source: str | Path, workspace: str | Path, clip_id: str | None = None,
           frames_fps: float = REFVPS_FPS, progress: bool = False) -> dict:
    """Resample ``source`` to 24 fps into ``workspace``; return the workspace info.

    An existing complete workspace is kept as it is (reopening never re-ingests; see
    :func:`reopen_warnings` for what the caller should say when it differs from the request).
    """
    workspace = Path(workspace)
    info_path = workspace / WORKSPACE_INFO
    if info_path.is_file():
        return json.loads(info_path.read_text(encoding="utf-8"))
    clip = probe(source, frames_fps=frames_fps)
    picks = resample_picks(clip.timestamps, clip.duration, REFVPS_FPS)
    frames_dir = workspace / WORKSPACE_FRAMES
    frames_dir.mkdir(parents=True, exist_ok=True)
    outputs: dict[int, list[int]] = {}
    for out_index, src_index in enumerate(picks):
        outputs.setdefault(src_index, []).append(out_index)
    decoded = iter_source_frames(clip, set(outputs))
    if progress:
        from tqdm import tqdm

        decoded = tqdm(decoded, total=len(outputs), desc="ingest", unit="frame")
    params = [cv2.IMWRITE_JPEG_QUALITY, ANNOTATE_JPEG_QUALITY]
    for src_index, image in decoded:
        ok, data = cv2.imencode(".jpg", image, params)
        if not ok:
            raise RuntimeError(f"cannot encode frame {src_index} of {clip.path} as JPEG")
        for out_index in outputs[src_index]:
            atomic_write_bytes(frames_dir / f"{frame_name(out_index)}.jpg", data.tobytes())
    frames = [frame_name(i) for i in range(len(picks))]
    info = {
        "format": WORKSPACE_FORMAT,
        "clip_id": clip_id or default_clip_id(source),
        "source": str(Path(source).resolve()),
        "source_kind": clip.kind,
        "source_fps": clip.fps,
        "source_frames": clip.n_frames,
        "timestamps_from": clip.timestamps_from,
        "upsampled": len(set(picks)) < len(picks),
        "picks": picks,
        "fps": REFVPS_FPS,
        "anno_stride": REFVPS_ANNO_STRIDE,
        "anno_offset": 0,
        "height": int(clip.size[0]),
        "width": int(clip.size[1]),
        "frames": frames,
        "anno_frames": frames[::REFVPS_ANNO_STRIDE],
        "jpeg_quality": ANNOTATE_JPEG_QUALITY,
        "opencv": cv2.__version__,
    }
    atomic_write_json(info_path, info)
    return info
