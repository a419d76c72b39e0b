"""Typed intake errors. Each is a `Problem`, so the API can raise it as is; `code` is the stable contract.

| class                | code                    | status |
|----------------------|-------------------------|--------|
| ImageTooLarge        | image_too_large         | 413    |
| UnsupportedMediaType | unsupported_media_type  | 415    |
| TooManyPixels        | image_too_many_pixels   | 422    |
| InvalidImage         | invalid_image           | 422    |
| InvalidDataUri       | invalid_data_uri        | 422    |
"""

from __future__ import annotations

from photobot.problems import Problem


class ImageError(Problem):
    """Base class of everything the intake refuses; subclasses fix status, code and title."""

    status_code = 422
    error_code = "invalid_image"
    error_title = "Invalid image"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(self.status_code, self.error_code, self.error_title, detail)


class ImageTooLarge(ImageError):
    """More bytes than the cap; raised as soon as the cap is passed, before the rest is read."""

    status_code = 413
    error_code = "image_too_large"
    error_title = "Image too large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The image is larger than {limit} bytes.")
        self.limit = limit


class UnsupportedMediaType(ImageError):
    """The bytes are not JPEG, PNG or WebP (whatever the declared content type says)."""

    status_code = 415
    error_code = "unsupported_media_type"
    error_title = "Unsupported media type"


class TooManyPixels(ImageError):
    """width x height from the header exceeds the pixel budget (decompression-bomb guard)."""

    status_code = 422
    error_code = "image_too_many_pixels"
    error_title = "Image has too many pixels"


class InvalidImage(ImageError):
    """Truncated, corrupt, or otherwise undecodable image data."""


class InvalidDataUri(ImageError):
    """A `data:` URI that is not `data:<type>;base64,<payload>` with valid base64."""

    error_code = "invalid_data_uri"
    error_title = "Invalid data URI"
