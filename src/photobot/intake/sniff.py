"""Content type from the first bytes (magic numbers); the declared content type is never trusted.

Only JPEG, PNG and WebP are accepted. HEIC/HEIF/AVIF are recognised so the error can say so (Pillow cannot
decode them without pillow-heif, which Photobot does not ship); GIF, PDF, text and anything else are simply
unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass

from photobot.intake.errors import UnsupportedMediaType

SNIFF_BYTES = 32


@dataclass(frozen=True)
class Format:
    content_type: str
    pillow_format: str  # the only decoder Image.open may use for it
    extension: str


JPEG = Format("image/jpeg", "JPEG", "jpg")
PNG = Format("image/png", "PNG", "png")
WEBP = Format("image/webp", "WEBP", "webp")

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}


def sniff(head: bytes) -> Format:
    """The format of an image from its first SNIFF_BYTES bytes, or UnsupportedMediaType."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        raise UnsupportedMediaType("HEIC/HEIF/AVIF images are not supported; send JPEG, PNG or WebP.")
    raise UnsupportedMediaType("The file is not a JPEG, PNG or WebP image.")
