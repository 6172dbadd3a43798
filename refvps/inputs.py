"""What an input file is, checked before it is decoded: the one place for file-level input rules.

Every reader of dataset or prediction files goes through here, so a file refvps cannot use is
named with the reason (an :class:`~refvps.errors.InputFileError`, turned into a ``Problem`` by
the caller) instead of crashing, hanging or being misread:

* only regular files are read: a directory, a FIFO (never opened for a blocking read, it would
  hang), a socket or device, a dangling symbolic link or a symbolic-link loop is named as such;
* a file is read in a bounded way: anything larger than :data:`MAX_MASK_BYTES` is refused
  before it is read whole into memory (zip members too, whatever their header claims);
* a PNG is recognised by its signature and IHDR header before decoding: other formats saved as
  ``.png`` (a JPEG, for instance), empty or truncated files and images above Pillow's
  decompression-bomb pixel limit are refused.
"""
from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from refvps.errors import InputFileError

MAX_MASK_BYTES = 128 * 1024 * 1024
"""Largest mask file read (bytes). An 8-bit 10000 x 10000 mask stored without compression is
about 95 MiB; a larger file is not a mask refvps can score."""

MAX_RESULTS_BYTES = 4 * 1024**3
"""Largest single results file read from a predictions store (e.g. a COCO results .json)."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_OTHER_FORMATS = (  # (leading bytes, what the file really is)
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"RIFF", "a RIFF (e.g. WebP) file"),
    (b"\x93NUMPY", "a NumPy .npy file"),
)

_PNG_COLOR_TYPES = {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale + alpha", 6: "RGBA"}


@dataclass(frozen=True)
class PngHeader:
    """The IHDR fields of a PNG."""

    width: int
    height: int
    bit_depth: int
    color_type: int

    @property
    def color(self) -> str:
        return _PNG_COLOR_TYPES.get(self.color_type, f"color type {self.color_type}")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file; it was not opened"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    return "is not a regular file"


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file (None when it is a readable regular file or a
    symbolic link to one). Never opens the path, so a FIFO cannot block."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"dangling symbolic link (to {os.readlink(path)!r})"
        return "file not found"
    except OSError as exc:
        return _os_reason(exc, path)
    return None if stat.S_ISREG(mode) else _kind(mode)


def _os_reason(exc: OSError, path: str | Path) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            return f"dangling symbolic link (to {os.readlink(path)!r})"
        return "file not found"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EISDIR:
        return "is a directory, not a file"
    return f"cannot be read ({exc.strerror or exc})"


def too_large(size: int, limit: int = MAX_MASK_BYTES) -> str:
    return (f"is {size / 2**20:.1f} MiB, larger than the {limit // 2**20} MiB refvps reads "
            "for one file of this kind; not read")


def read_file(path: str | Path, where: str | None = None, limit: int = MAX_MASK_BYTES,
              head: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (its first ``head`` bytes if given), bounded.

    Opened non-blocking (a FIFO swapped in after a check cannot hang the read) and checked with
    ``fstat`` on the open descriptor, so what is read is what was checked. Read straight from
    the descriptor, its size plus one byte: a buffered read of ``limit`` bytes would map and
    unmap a ``limit``-sized buffer for every mask.
    """
    where = str(path) if where is None else where
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputFileError(where, _os_reason(exc, path)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(where, _kind(info.st_mode))
        if info.st_size > limit:
            raise InputFileError(where, too_large(info.st_size, limit))
        if head is not None:
            return _read_fd(fd, head)
        data = _read_fd(fd, info.st_size + 1)
        if len(data) > info.st_size:  # it grew since fstat: read on, up to the limit
            data += _read_fd(fd, limit + 1 - len(data))
    except OSError as exc:
        raise InputFileError(where, _os_reason(exc, path)) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputFileError(where, _longer_than(limit))
    return data


def _read_fd(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes from ``fd``, fewer only at the end of the file."""
    chunks = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _longer_than(limit: int) -> str:
    return (f"is larger than the {limit // 2**20} MiB refvps reads for one file of this kind; "
            "not read")


def read_bounded(handle: BinaryIO, where: str, limit: int = MAX_MASK_BYTES) -> bytes:
    """At most ``limit`` bytes of ``handle``; a longer stream is refused, not read on."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputFileError(where, _longer_than(limit))
    return data


def png_header(data: bytes, where: str) -> PngHeader:
    """The IHDR of the PNG ``data``; an :class:`InputFileError` for anything that is not one."""
    if not data:
        raise InputFileError(where, "unreadable image: empty file (0 bytes)")
    if not data.startswith(PNG_SIGNATURE):
        for magic, what in _OTHER_FORMATS:
            if data.startswith(magic):
                raise InputFileError(where, f"unreadable image: {what}, not a PNG (its bytes are "
                                            "another format)")
        raise InputFileError(where, "unreadable image: not a PNG (no PNG signature at the "
                                    "start of the file)")
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise InputFileError(where, "unreadable image (truncated or corrupt PNG: no IHDR header)")
    width, height, bit_depth, color_type = struct.unpack(">IIBB", data[16:26])
    if width == 0 or height == 0:
        raise InputFileError(where, f"unreadable image (corrupt PNG header: size {width}x{height})")
    return PngHeader(width, height, bit_depth, color_type)


def check_png(data: bytes, where: str) -> PngHeader:
    """:func:`png_header`, plus Pillow's decompression-bomb pixel limit checked up front."""
    from PIL import Image

    header = png_header(data, where)
    limit = Image.MAX_IMAGE_PIXELS
    if limit and header.width * header.height > limit:
        raise InputFileError(where, f"image is {header.width}x{header.height} = "
                                    f"{header.width * header.height} pixels, above Pillow's "
                                    f"decompression-bomb limit of {limit} pixels; not decoded")
    return header
