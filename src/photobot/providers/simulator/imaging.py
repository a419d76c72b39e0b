"""A real, stylised result image, made with Pillow from the input photo.

Posterize, rotate the colour channels, frame it and write the style text: cheap, deterministic per prompt and
obviously "processed", so end-to-end tests can check the result decodes and differs from the input. Padding
(for transfer benchmarks) goes into an ancillary PNG chunk or JPEG comment segments, so the file stays a valid
image of the requested size in bytes.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import struct
import zlib

from PIL import Image, ImageDraw, ImageOps

_SCALE = {"1K": 1.0, "2K": 1.5, "4K": 2.0}


def _target_size(ratio: str | None, long_side: int, source: tuple[int, int]) -> tuple[int, int]:
    if ratio and ratio != "auto" and ":" in ratio:
        w, h = (float(x) for x in ratio.split(":", 1))
    else:
        w, h = source
    if w >= h:
        return long_side, max(16, round(long_side * h / w))
    return max(16, round(long_side * w / h)), long_side


def stylise(
    source: bytes | None,
    prompt: str,
    *,
    aspect_ratio: str | None = None,
    resolution: str | None = None,
    output_format: str = "png",
    long_side: int = 512,
    pad_to: int = 0,
) -> tuple[bytes, str]:
    """The result image bytes and its content type."""
    colour = tuple(hashlib.sha256(prompt.encode()).digest()[:3])
    if source:
        with Image.open(io.BytesIO(source)) as opened:
            opened.load()
            base: Image.Image = ImageOps.exif_transpose(opened).convert("RGB")
    else:
        base = Image.linear_gradient("L").convert("RGB").resize((256, 256))
    side = int(long_side * _SCALE.get((resolution or "1K").upper(), 1.0))
    size = _target_size(aspect_ratio, side, base.size)
    border = max(4, side // 40)
    img: Image.Image = ImageOps.fit(base, (size[0] - 2 * border, size[1] - 2 * border))
    img = ImageOps.posterize(img, 3)
    r, g, b = img.split()
    img = Image.merge("RGB", (b, r, g))
    img = ImageOps.expand(img, border=border, fill=colour)
    draw = ImageDraw.Draw(img)
    draw.rectangle((border, img.height - border - 18, img.width - border, img.height - border), fill=(0, 0, 0))
    draw.text((border + 4, img.height - border - 16), prompt[:60], fill=(255, 255, 255))
    out = io.BytesIO()
    if output_format in ("jpg", "jpeg"):
        img.save(out, "JPEG", quality=85)
        data, content_type = out.getvalue(), "image/jpeg"
        return (_pad_jpeg(data, pad_to) if pad_to else data), content_type
    if output_format == "webp":
        img.save(out, "WEBP", quality=85)
        return out.getvalue(), "image/webp"
    img.save(out, "PNG", compress_level=1)
    data = out.getvalue()
    return (_pad_png(data, pad_to) if pad_to else data), "image/png"


stylise_again = functools.lru_cache(maxsize=4)(stylise)
"""`stylise`, remembering the last few results: the same input, prompt and options give the same image.

What the task runners call. A provider runs its model on its own machines; the simulator runs on the machine under
test, and a benchmark that sends the same photo and style two hundred times would otherwise spend a good share of
that machine's CPU (the 2 MB padding alone is a random payload and its CRC) rendering the same image again while
the service finishes the jobs before it."""


def _pad_png(data: bytes, pad_to: int) -> bytes:
    """Insert a private ancillary chunk (`pbPd`, ignored by decoders) before IEND."""
    missing = pad_to - len(data) - 12
    if missing <= 0:
        return data
    payload = os.urandom(missing)
    chunk = struct.pack(">I", len(payload)) + b"pbPd" + payload
    chunk += struct.pack(">I", zlib.crc32(b"pbPd" + payload) & 0xFFFFFFFF)
    iend = data.rfind(b"IEND") - 4
    return data[:iend] + chunk + data[iend:]


def _pad_jpeg(data: bytes, pad_to: int) -> bytes:
    """Insert COM segments (≤ 65533 bytes each) right after SOI."""
    missing = pad_to - len(data)
    segments = []
    while missing > 4:
        size = min(65533, missing - 4)
        segments.append(b"\xff\xfe" + struct.pack(">H", size + 2) + os.urandom(size))
        missing -= size + 4
    return data[:2] + b"".join(segments) + data[2:]
