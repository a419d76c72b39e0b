"""Every test image is made here, in memory, in milliseconds: one set of builders for all the test folders.

A test that needs a particular image passes its size and colour; the defaults are a small tomato-red picture.
"""

from __future__ import annotations

import base64
import io
import os
import struct
import zlib
from typing import Any

from PIL import Image

Colour = str | tuple[int, ...]


def encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    """`img` saved as `fmt` (JPEG, PNG, WEBP, GIF, ...) with Pillow's save parameters."""
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def image_bytes(fmt: str, size: tuple[int, int] = (64, 64), color: Colour = "tomato", **params: Any) -> bytes:
    """A plain RGB picture of one colour, encoded as `fmt`."""
    return encode(Image.new("RGB", size, color), fmt, **params)


def jpeg(size: tuple[int, int] = (64, 64), color: Colour = "tomato", *, quality: int = 85, **save: Any) -> bytes:
    """The guest photo of most tests: a small one-colour JPEG."""
    return image_bytes("JPEG", size, color, quality=quality, **save)


def png(size: tuple[int, int] = (64, 64), color: Colour = "tomato") -> bytes:
    """A one-colour PNG (results in storage, provider inputs)."""
    return image_bytes("PNG", size, color)


def striped_png(size: tuple[int, int] = (600, 800), color: Colour = "#3c8dbc") -> bytes:
    """A PNG with vertical stripes, so thumbnails and downscales are not trivially uniform."""
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 40):
        img.paste("#f4d35e", (x, 0, x + 20, size[1]))
    return encode(img, "PNG")


def noise_jpeg(target_bytes: int) -> bytes:
    """A real JPEG of at least `target_bytes` (random noise does not compress)."""
    side = 256
    while True:
        img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        data = encode(img, "JPEG", quality=95)
        if len(data) >= target_bytes:
            return data
        side = int(side * 1.3)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 30_000, height: int = 30_000, *, real_data: bool = False) -> bytes:
    """A 1-bit greyscale PNG claiming width x height (a decompression bomb). Without `real_data` the file is
    ~100 bytes and only the header is honest; with it the IDAT really inflates to that size (all zeros, so it
    compresses ~1000:1)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    if real_data:
        compressor = zlib.compressobj(9)
        row = b"\x00" * (1 + (width + 7) // 8)
        parts = [compressor.compress(row) for _ in range(height)]
        parts.append(compressor.flush())
        idat = b"".join(parts)
    else:
        idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def data_uri(data: bytes, media_type: str = "image/jpeg") -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode()
