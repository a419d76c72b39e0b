"""Object storage for photos: one small interface, two implementations (local files, S3-compatible).

`open_storage(url, ...)` picks the implementation from `PHOTOBOT_STORAGE_URL`'s scheme.
"""

from __future__ import annotations

from photobot.storage.base import Storage, StorageError, StoredObject, validate_key
from photobot.storage.factory import open_storage

__all__ = ["Storage", "StorageError", "StoredObject", "open_storage", "validate_key"]
