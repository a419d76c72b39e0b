"""Gallery thumbnails: made once from the stored result, kept under `thumbs/{job_id}.jpg`, then reused.

A thumbnail is created lazily on its first view (or when the live wall first shows the photo); concurrent
first views in one process share the work, and across processes the deterministic key makes a second
upload a harmless overwrite. Retention deletes it together with the result.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from photobot.db.models import Job
from photobot.storage import Storage, StorageError
from photobot.storage.keys import thumb_key

THUMB_SIDE = 480
_locks: dict[str, asyncio.Lock] = {}


def _make_thumbnail(path: Path) -> bytes:
    with Image.open(path) as source:
        source.draft("RGB", (THUMB_SIDE * 2, THUMB_SIDE * 2))  # fast JPEG downscale on decode
        img: Image.Image = ImageOps.exif_transpose(source)
        img.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
        if img.mode != "RGB":
            background = Image.new("RGB", img.size, "white")
            rgba = img.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            img = background
        out = io.BytesIO()
        img.save(out, "JPEG", quality=82, optimize=True, progressive=True)
        return out.getvalue()


async def ensure_thumbnail(storage: Storage, job: Job, tmp_dir: Path) -> str:
    """The thumbnail's key, creating it from the result first if it does not exist yet."""
    if not job.result_key:
        raise StorageError("job has no result")
    key = thumb_key(job.id)
    lock = _locks.setdefault(job.id, asyncio.Lock())
    try:
        async with lock:
            if await storage.exists(key):
                return key
            tmp_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="thumb-", delete=False) as handle:
                path = Path(handle.name)
            try:
                await storage.download_to(job.result_key, path)
                data = await asyncio.to_thread(_make_thumbnail, path)
            finally:
                path.unlink(missing_ok=True)
            await storage.put_bytes(key, data, "image/jpeg")
            return key
    finally:
        if not lock.locked():
            _locks.pop(job.id, None)
