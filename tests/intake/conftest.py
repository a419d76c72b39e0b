"""Image builders for the intake tests: every test image is made here, in memory, in milliseconds."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int, *, real_data: bool) -> bytes:
    """A 1-bit greyscale PNG claiming width x height; with `real_data` the IDAT really inflates to that size
    (all zeros, so it compresses ~1000:1), otherwise the IDAT is a token and only the header is honest."""
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
