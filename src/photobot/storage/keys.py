"""The names of stored objects, in one place: every writer and every cleaner (retention, retry) agree on them.

Keys are deterministic per job, so a step that runs twice overwrites instead of leaving a second copy behind.
"""

from __future__ import annotations

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
RETENTION_CURSOR = "retention/inputs.cursor"


def extension_for(content_type: str) -> str:
    return EXTENSIONS.get(content_type, "bin")


def upload_key(job_id: str, extension: str) -> str:
    """The guest's photo exactly as uploaded (metadata and all), until the submit step has cleaned it into
    `input_key` and deleted this one."""
    return f"uploads/{job_id}.{extension}"


def is_upload(key: str) -> bool:
    return key.startswith("uploads/")


def input_key(job_id: str, extension: str) -> str:
    """The guest's photo as the provider sees it: oriented, stripped of metadata, downscaled (deleted by retention
    after `PHOTOBOT_INPUT_TTL_HOURS`)."""
    return f"inputs/{job_id}.{extension}"


def result_key(job_id: str, content_type: str) -> str:
    """The provider's result, as verified and stored by the finish step."""
    return f"results/{job_id}.{extension_for(content_type)}"


def thumb_key(job_id: str) -> str:
    """The gallery thumbnail, made once from the result."""
    return f"thumbs/{job_id}.jpg"


def job_photo_keys(job_id: str, *known: str | None) -> list[str]:
    """Every object a job can own — the keys its row names (`known`) and every name a step could have written
    under, in any extension — so erasing a guest's photos (forget, purge) leaves nothing behind even when a step
    was writing at that moment or a row was never updated."""
    keys = {key for key in known if key}
    for ext in sorted({*EXTENSIONS.values(), "bin"}):
        keys.update((upload_key(job_id, ext), input_key(job_id, ext), f"results/{job_id}.{ext}"))
    keys.add(thumb_key(job_id))
    return sorted(keys)


def style_preview_key(style_id: str, extension: str) -> str:
    """A style's example image, shown in the kiosk's style picker."""
    return f"styles/{style_id}/preview.{extension}"


def extension_of(key: str, default: str = "jpg") -> str:
    return key.rsplit(".", 1)[-1] if "." in key.rsplit("/", 1)[-1] else default
