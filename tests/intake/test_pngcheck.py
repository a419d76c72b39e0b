"""`check_png`: a complete PNG passes in bounded memory; every truncation and every corrupted byte is refused."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from photobot.intake import InvalidImage
from photobot.intake.pngcheck import check_png as check
from photobot.intake.pngcheck import expected_raw_size
from tests.support.images import encode

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"]


def _png(mode: str, size: tuple[int, int] = (37, 23)) -> bytes:
    img = Image.effect_noise(size, 64).convert(mode if mode != "I;16" else "I").convert(mode) if mode != "1" else (
        Image.effect_noise(size, 64).convert("1"))  # fmt: skip
    return encode(img, "PNG")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _interlaced_rgb(width: int, height: int) -> bytes:
    """An Adam7-interlaced 8-bit RGB PNG built by hand (Pillow does not write interlaced PNGs)."""
    raw = bytearray()
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                           (0, 1, 1, 2)):  # fmt: skip
        cols = len(range(x0, width, dx))
        for y in range(y0, height, dy):
            if cols:
                raw += b"\x00" + bytes((x * 7 + y * 3 + c) % 256 for x in range(cols) for c in range(3))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(raw))) + _chunk(
        b"IEND", b"")  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_complete_pngs_of_every_kind_pass(mode: str) -> None:
    check(io.BytesIO(_png(mode)))


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (9, 9), (17, 5)])
def test_interlaced_pngs_pass(size: tuple[int, int]) -> None:
    data = _interlaced_rgb(*size)
    with Image.open(io.BytesIO(data)) as img:  # the hand-built file is a real PNG
        img.load()
        assert img.size == size and img.info.get("interlace") == 1
    check(io.BytesIO(data))
    assert expected_raw_size(*size, 8, 2, True) > 0


@pytest.mark.parametrize("mode", MODES)
def test_every_truncation_is_refused(mode: str) -> None:
    data = _png(mode)  # small: every cut point is tried, the header's included (a generated sample missed it once)
    for cut in range(len(data)):
        with pytest.raises(InvalidImage):
            check(io.BytesIO(data[:cut]))


@settings(max_examples=80, deadline=None)
@given(mode=st.sampled_from(MODES), where=st.floats(0, 1, exclude_max=True), flip=st.integers(1, 255))
def test_every_corrupted_byte_is_refused(mode: str, where: float, flip: int) -> None:
    data = bytearray(_png(mode))
    data[int(len(data) * where)] ^= flip
    with pytest.raises(InvalidImage):
        check(io.BytesIO(bytes(data)))


def test_a_huge_ancillary_chunk_is_checked_in_bounded_memory() -> None:
    base = _png("RGB")
    padded = base[:-12] + _chunk(b"zzPd", b"\x00" * 20_000_000) + base[-12:]  # before IEND, as the simulator pads
    tracemalloc.start()
    try:
        check(io.BytesIO(padded))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak  # 64 KB buffers, never the 20 MB chunk
