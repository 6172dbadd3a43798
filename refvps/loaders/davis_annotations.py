"""Checks of a DAVIS annotation folder shared by the DAVIS-based benchmarks (Ref-DAVIS, DAVIS-17)."""
from __future__ import annotations

from pathlib import Path

from refvps.errors import MaskError, Problem
from refvps.formats import FRAME_EXT, MASK_EXT
from refvps.inputs import check_png, read_file


def check_annotation_frames(folder: Path, frames: list[str], jpeg_dir: Path) -> list[Problem]:
    """Every problem of one sequence's annotation PNGs: absent, unreadable, not 8-bit palette or
    grayscale, of another size than the first frame; and JPEG frames without an annotation."""
    if not frames:
        return [Problem(str(folder), "no annotation PNGs" if folder.is_dir()
                        else "annotation folder not found")]
    problems, size = [], None
    for frame in frames:
        path = folder / f"{frame}{MASK_EXT}"
        try:
            header = check_png(read_file(path, head=64), str(path))
        except MaskError as exc:
            problems.append(Problem(exc.path, exc.what))
            continue
        frame_size = (header.width, header.height)
        if header.color_type not in (0, 3) or header.bit_depth > 8:
            problems.append(Problem(str(path), f"{header.bit_depth}-bit {header.color} PNG; "
                                               "annotations must be 8-bit palette ('P') or "
                                               "grayscale ('L') PNGs"))
        size = size or frame_size
        if frame_size != size:
            problems.append(Problem(str(path), f"size {frame_size[0]}x{frame_size[1]} (WxH) "
                                               f"differs from the first frame's "
                                               f"{size[0]}x{size[1]}"))
    if jpeg_dir.is_dir():
        unannotated = sorted({p.stem for p in jpeg_dir.glob(f"*{FRAME_EXT}")} - set(frames))
        if unannotated:
            problems.append(Problem(str(folder), f"{len(unannotated)} frame(s) of {jpeg_dir} have "
                                                 f"no annotation, e.g. {unannotated[0]} (the "
                                                 "official evaluator cannot score them)"))
    return problems
