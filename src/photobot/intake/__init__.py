"""Image intake: bytes in under a cap, a clean bounded JPEG/PNG out (see `images`)."""

from photobot.intake.errors import (
    ImageError,
    ImageTooLarge,
    InvalidDataUri,
    InvalidImage,
    TooManyPixels,
    UnsupportedMediaType,
)
from photobot.intake.images import ImageProcessor, ProcessedImage, inspect, open_checked, process_image, verify_image
from photobot.intake.reading import decode_data_uri, parse_data_uri_header
from photobot.intake.sniff import Format, sniff

__all__ = [
    "Format",
    "ImageError",
    "ImageProcessor",
    "ImageTooLarge",
    "InvalidDataUri",
    "InvalidImage",
    "ProcessedImage",
    "TooManyPixels",
    "UnsupportedMediaType",
    "decode_data_uri",
    "inspect",
    "open_checked",
    "parse_data_uri_header",
    "process_image",
    "sniff",
    "verify_image",
]
