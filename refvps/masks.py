"""Mask I/O: palette / grayscale PNGs, binary masks, COCO RLE (through pycocotools).

Reading follows the DAVIS reference reader: ``np.array(PIL.Image.open(path))``, so a palette
PNG yields its indices and an ``L`` PNG its values. Inputs the reference readers would silently
misread (RGB, RGBA, 16-bit, unreadable) raise :class:`~refvps.errors.MaskError` naming the file;
files are read and recognised as PNGs by :mod:`refvps.inputs` before Pillow decodes them.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from refvps.errors import MaskError
from refvps.fileio import atomic_write
from refvps.formats import voc_palette
from refvps.inputs import check_png, read_file
from refvps.pngdecode import decode_labels

if TYPE_CHECKING:
    from PIL import Image

_ACCEPTED_MODES = frozenset({"P", "L", "1"})  # palette, grayscale, bilevel
_MODE_ERRORS = {
    "RGB": "is an RGB image; masks must be single-channel (palette 'P' or grayscale 'L')",
    "RGBA": "is an RGBA image; masks must be single-channel (palette 'P' or grayscale 'L')",
    "LA": "has an alpha channel (mode 'LA'); masks must be single-channel 'P' or 'L'",
    "PA": "has an alpha channel (mode 'PA'); masks must be single-channel 'P' or 'L'",
    "I;16": "is a 16-bit image; masks must be 8-bit (palette 'P' or grayscale 'L')",
    "I;16B": "is a 16-bit image; masks must be 8-bit (palette 'P' or grayscale 'L')",
    "I": "is a 16/32-bit integer image; masks must be 8-bit (palette 'P' or grayscale 'L')",
    "F": "is a floating-point image; masks must be 8-bit (palette 'P' or grayscale 'L')",
}


def _decode(source: BinaryIO, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # only here: masks decode without it

    try:
        with Image.open(source) as image:
            mode = image.mode
            if mode not in _ACCEPTED_MODES:
                raise MaskError(name, _MODE_ERRORS.get(mode, f"has unsupported image mode {mode!r}"))
            image.load()
            array = np.array(image)
    except MaskError:
        raise
    except UnidentifiedImageError:
        raise MaskError(name, "unreadable image (not a recognised image format)") from None
    except Image.DecompressionBombError as exc:
        raise MaskError(name, f"refused by Pillow's decompression-bomb guard ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MaskError(name, f"unreadable image ({exc.__class__.__name__}: {exc})") from None
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.ndim != 2:
        raise MaskError(name, f"expected a 2-D mask, got shape {array.shape}")
    return array


def read_mask(path: str | Path) -> np.ndarray:
    """Read a label mask (uint8, H x W): palette indices or grayscale values."""
    return read_mask_bytes(read_file(path), str(path))


def read_mask_bytes(data: bytes, name: str) -> np.ndarray:
    """Like :func:`read_mask` for a PNG held in memory (e.g. read from a zip)."""
    check_png(data, name)
    fast = decode_labels(data)  # None: not a plain mask PNG, PIL decides
    return fast if fast is not None else _decode(io.BytesIO(data), name)


def binarize(mask: np.ndarray) -> np.ndarray:
    """Foreground = any non-zero value (the convention of every official evaluator)."""
    mask = np.asarray(mask)
    return mask if mask.dtype == bool else mask != 0


def _atomic_save(image: Image.Image, path: Path) -> None:
    atomic_write(path, lambda handle: image.save(handle, format="PNG"))


def write_label_mask(path: str | Path, labels: np.ndarray) -> None:
    """Write a palette PNG (VOC colours): 0 = background, 1..K = ids, 255 = Ignore / void."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: a mask must be 2-D, got shape {labels.shape}")
    if labels.dtype != np.uint8:
        if labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
            raise ValueError(f"{path}: label values must lie in 0..255")
        labels = labels.astype(np.uint8)
    from PIL import Image

    image = Image.fromarray(labels)  # mode "L"; putpalette turns it into "P" keeping the values
    image.putpalette(voc_palette().ravel().tolist())
    _atomic_save(image, Path(path))


def write_binary_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write a binary prediction as an 8-bit grayscale PNG with values 0 / 255."""
    mask = binarize(mask)
    if mask.ndim != 2:
        raise ValueError(f"{path}: a mask must be 2-D, got shape {mask.shape}")
    from PIL import Image

    _atomic_save(Image.fromarray(mask.astype(np.uint8) * 255), Path(path))


def rle_encode(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a binary mask: ``{"size": [H, W], "counts": str}``."""
    from pycocotools import mask as mask_utils

    fortran = np.asfortranarray(binarize(mask).astype(np.uint8))
    rle = mask_utils.encode(fortran)
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_decode(rle: dict | str | bytes, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode COCO RLE to a bool H x W mask (C order); ``rle`` may be a dict or a bare counts
    string."""
    from pycocotools import mask as mask_utils

    if isinstance(rle, (str, bytes)):
        if size is None:
            raise ValueError("a bare RLE counts string needs size=(height, width)")
        rle = {"size": list(size), "counts": rle}
    counts = rle["counts"]
    if isinstance(counts, list):
        height, width = rle["size"]
        rle = mask_utils.frPyObjects(rle, height, width)
    elif isinstance(counts, str):
        rle = {"size": list(rle["size"]), "counts": counts.encode("ascii")}
    decoded = mask_utils.decode(rle)  # ValueError for runs longer than H x W
    if decoded.max(initial=0) > 1:  # runs shorter than H x W leave the buffer uninitialised
        raise ValueError("malformed RLE: its runs do not cover the H x W mask")
    if decoded.size == 0:
        return np.zeros(decoded.shape, bool)
    # pycocotools fills the mask column by column (Fortran order); every later operation (a
    # union, a comparison with a C-order prediction) runs many times faster in C order.
    return _c_order(decoded).view(bool)


def _c_order(mask: np.ndarray) -> np.ndarray:
    """A Fortran-order uint8 H x W mask copied to C order, by the compiled kernel where it was
    built with SIMD (so that scoring processes need not load OpenCV), else by OpenCV: both
    ~10x faster than NumPy's strided copy."""
    from refvps.metrics.boundary import compiled_kernel

    kernel = compiled_kernel()
    if kernel is None or not kernel.transpose_simd:
        import cv2

        return cv2.transpose(mask.T)
    out = np.empty(mask.shape, np.uint8)
    kernel.transpose_u8(np.ascontiguousarray(mask.T), out)  # no copy: mask.T is C-contiguous
    return out
