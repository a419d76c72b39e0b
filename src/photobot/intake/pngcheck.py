"""Check that a PNG is whole and consistent in constant memory: every chunk's CRC, the image data's zlib stream
inflated to exactly the size the header implies, and IEND at the end — without holding any chunk or pixel row.

Why by hand: Pillow's `load()` allocates the whole bitmap (up to `max_pixels` x 4 bytes) and reads every ancillary
chunk after the image data whole into memory (a 20 MB padding chunk costs 40 MB of allocations), and its `verify()`
reads chunks whole too and never inflates the image data. For provider results, which are stored and shown, not
edited, "decodes completely" is the property we need; this proves it with 64 KB buffers (docs/design-notes.md).
"""

from __future__ import annotations

import struct
import zlib
from typing import IO

from photobot.intake.errors import InvalidImage

SIGNATURE = b"\x89PNG\r\n\x1a\n"
BUFFER = 64 * 1024
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def expected_raw_size(width: int, height: int, bit_depth: int, colour_type: int, interlaced: bool) -> int:
    """Bytes the image data inflates to: each scanline is a filter byte plus its packed samples."""
    bits = bit_depth * _CHANNELS[colour_type]

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlaced:
        return rows(width, height)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        total += rows(
            (width - x0 + dx - 1) // dx if width > x0 else 0, (height - y0 + dy - 1) // dy if height > y0 else 0
        )
    return total


def check_png(handle: IO[bytes]) -> None:
    """InvalidImage unless the stream is a complete, consistent PNG (see the module docstring)."""
    if handle.read(8) != SIGNATURE:
        raise InvalidImage("The image is not a PNG.")
    inflater = zlib.decompressobj()
    expected = produced = -1
    seen_idat = False
    while True:
        head = handle.read(8)
        if len(head) < 8:
            raise InvalidImage("The image is truncated.")
        length, kind = struct.unpack(">I4s", head)
        crc = zlib.crc32(kind)
        remaining = length
        if kind == b"IHDR":
            if length != 13:
                raise InvalidImage("The image header is corrupt.")
            data = handle.read(13)
            if len(data) < 13:
                raise InvalidImage("The image is truncated.")
            crc = zlib.crc32(data, crc)
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data)
            if colour not in _CHANNELS:
                raise InvalidImage("The image header is corrupt.")
            expected, produced = expected_raw_size(width, height, depth, colour, interlace == 1), 0
            remaining = 0
        while remaining:
            piece = handle.read(min(BUFFER, remaining))
            if not piece:
                raise InvalidImage("The image is truncated.")
            remaining -= len(piece)
            crc = zlib.crc32(piece, crc)
            if kind == b"IDAT":
                seen_idat = True
                try:
                    produced += _inflated(inflater, piece, expected - produced)
                except zlib.error:
                    raise InvalidImage("The image data is corrupt.") from None
        stored = handle.read(4)
        if len(stored) < 4 or struct.unpack(">I", stored)[0] != crc & 0xFFFFFFFF:
            raise InvalidImage("The image is truncated or corrupt.")
        if kind == b"IEND":
            break
    if not seen_idat or expected < 0 or not inflater.eof or produced != expected:
        raise InvalidImage("The image data is incomplete.")


def _inflated(inflater: zlib._Decompress, piece: bytes, room: int) -> int:
    """Inflate `piece` in bounded steps, counting (not keeping) the output; more than `room` bytes is corrupt."""
    count = 0
    data = piece
    while data:
        out = inflater.decompress(data, BUFFER)
        count += len(out)
        if count > room:
            raise InvalidImage("The image data is larger than its header says.")
        data = inflater.unconsumed_tail
    return count
