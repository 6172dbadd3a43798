"""Ways to break an input file, for the bad-input corpus (tests/test_bad_inputs.py).

Each function turns a good file of a fixture into one kind of bad input, in place, the way a
user's disk or a tool gets it there: real PNG / JPEG / zip bytes, real FIFOs and symlinks.
Zip damage is done by editing the fields of the archive the zip format (APPNOTE.TXT 4.3.7,
4.3.12) defines: general purpose flags, compression method, sizes, and the stored bytes.
"""
from __future__ import annotations

import io
import json
import os
import stat
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

LOCAL_HEADER, CENTRAL_HEADER = b"PK\x03\x04", b"PK\x01\x02"


# --- JSON and text ------------------------------------------------------------------------------
def edit_json(path: Path, edit: Callable[[Any], Any]) -> None:
    """Rewrite the JSON file ``path`` after ``edit(data)`` changed it in place (NaN written as
    NaN, as Python's json module does)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data))


def put(keys: tuple, value: Any) -> Callable[[Any], None]:
    """An ``edit_json`` edit setting the value at ``keys`` (a missing key is created)."""
    def edit(data):
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value
    return edit


def drop(keys: tuple) -> Callable[[Any], None]:
    def edit(data):
        for key in keys[:-1]:
            data = data[key]
        del data[keys[-1]]
    return edit


# --- files that are not what their name says ------------------------------------------------------
def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def mask_of(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image)


def as_jpeg(path: Path) -> None:
    """JPEG bytes under the .png name (a grayscale JPEG Pillow would decode as a mask)."""
    mask = mask_of(path).astype(np.uint8)
    path.unlink()
    Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8)).save(path, format="JPEG")


def as_gif(path: Path) -> None:
    mask = mask_of(path).astype(np.uint8)
    path.unlink()
    Image.fromarray(mask).save(path, format="GIF")


def as_rgb(path: Path, colour=(255, 255, 255)) -> None:
    """An RGB PNG of the mask (foreground in ``colour``)."""
    mask = mask_of(path) > 0
    rgb = np.zeros((*mask.shape, 3), np.uint8)
    rgb[mask] = colour
    path.write_bytes(png_bytes(rgb))


def as_rgba(path: Path) -> None:
    mask = mask_of(path) > 0
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask] = (255, 255, 255, 255)
    path.write_bytes(png_bytes(rgba))


def as_gray_alpha(path: Path) -> None:
    mask = (mask_of(path) > 0).astype(np.uint8) * 255
    image = Image.fromarray(np.stack([mask, mask], axis=-1), "LA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


def as_16bit(path: Path) -> None:
    """A 16-bit grayscale PNG with foreground value 1 (OpenCV's 8-bit read makes it 0)."""
    mask = (mask_of(path) > 0).astype(np.uint16)
    path.write_bytes(png_bytes(mask))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not an image at all\n" * 4)


def truncated(path: Path) -> None:
    """Only the PNG signature and part of the IHDR chunk."""
    path.write_bytes(path.read_bytes()[:20])


def corrupt_body(path: Path) -> None:
    """A valid signature and IHDR, then garbage where the image data should be."""
    data = path.read_bytes()
    path.write_bytes(data[:33] + b"\x00\x00\x00\x10IDATgarbage-garbage!" + b"\x00" * 8)


def pixel_bomb(path: Path, width: int = 40000, height: int = 40000) -> None:
    """A PNG whose header claims 1.6 G pixels (only the header: never decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + \
        struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", len(idat)) + b"IDAT" +
                     idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat)))


def resized(path: Path) -> None:
    mask = mask_of(path)
    path.write_bytes(png_bytes(np.zeros((mask.shape[0] + 3, mask.shape[1]), np.uint8)))


def sparse_huge(path: Path, size: int = 130 * 2**20) -> None:
    """A file of ``size`` bytes that takes no disk space (a sparse file)."""
    with open(path, "r+b") as handle:
        handle.truncate(size)


# --- entries that are not regular files --------------------------------------------------------------
def to_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


def to_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def dangling(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.with_name("no-such-file.png"))


def loop(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.name)


def remove(path: Path) -> None:
    path.unlink()


# --- zip archives ----------------------------------------------------------------------------
def zip_folder(folder: Path, archive: Path, name: Callable[[str], str] = lambda n: n,
               extra: dict[str, bytes] | None = None,
               compression: int = zipfile.ZIP_STORED) -> Path:
    """Zip every file under ``folder`` (member names through ``name``), plus ``extra``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose
        with zipfile.ZipFile(archive, "w", compression) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.writestr(name(path.relative_to(folder).as_posix()), path.read_bytes())
            for member, data in (extra or {}).items():
                zf.writestr(member, data)
    return archive


def _headers(data: bytes, signature: bytes, length_at: int, name_at: int,
             member: str) -> list[int]:
    """Offsets of the local or central headers of ``member`` (name length at ``length_at``,
    name at ``name_at``)."""
    found, start, encoded = [], 0, member.encode()
    while (at := data.find(signature, start)) >= 0:
        name_len = struct.unpack("<H", data[at + length_at:at + length_at + 2])[0]
        if data[at + name_at:at + name_at + name_len] == encoded:
            found.append(at)
        start = at + 4
    return found


def patch_member(archive: Path, member: str, *, flags: int = 0, method: int | None = None,
                 size: int | None = None) -> None:
    """OR ``flags`` into the member's flags, set its compression method or uncompressed size,
    in both its local header and its central directory record (APPNOTE 4.3.7 / 4.3.12)."""
    data = bytearray(archive.read_bytes())
    for signature, length_at, name_at, flag_at, method_at, size_at in (
            (LOCAL_HEADER, 26, 30, 6, 8, 22), (CENTRAL_HEADER, 28, 46, 8, 10, 24)):
        for at in _headers(bytes(data), signature, length_at, name_at, member):
            old = struct.unpack("<H", data[at + flag_at:at + flag_at + 2])[0]
            data[at + flag_at:at + flag_at + 2] = struct.pack("<H", old | flags)
            if method is not None:
                data[at + method_at:at + method_at + 2] = struct.pack("<H", method)
            if size is not None:
                data[at + size_at:at + size_at + 4] = struct.pack("<I", size)
    archive.write_bytes(bytes(data))


def flip_stored_byte(archive: Path, member_bytes: bytes) -> None:
    """Damage a stored member's bytes in the archive (its CRC no longer matches)."""
    data = bytearray(archive.read_bytes())
    at = bytes(data).find(member_bytes)
    assert at >= 0
    data[at + len(member_bytes) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))


def symlink_member(archive: Path, member: str, target: str) -> None:
    """Append a member stored as a Unix symbolic link (mode S_IFLNK in external_attr)."""
    info = zipfile.ZipInfo(member)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(archive, "a") as zf:
            zf.writestr(info, target)
