"""Opening a file to write it from the start without making ext4 flush it on close: `open_fresh`.

ext4 (its default `auto_da_alloc`) takes a truncation to zero bytes for a "rewrite in place" and, when the file is
closed, starts writing its pages to disk in the closing thread (`ext4_alloc_da_blocks`). Our temporary files are
made empty first (`NamedTemporaryFile(delete=False)`, so a name exists to clean up) and then written by whoever
fills them — an upload, a provider's result, an object from storage — and `path.open("wb")` truncates: the close
then waited for block allocation and the block layer's write throttling on the event loop, 0.1-0.5 s with the
disk busy (seen in the loop thread's kernel stack under 16 concurrent 1 MB uploads; docs/benchmarks.md). Opened
without `O_TRUNC`, the pages stay in the page cache like any new file's and the kernel's flusher threads write
them back in the background.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def open_fresh(path: str | os.PathLike[str]) -> BinaryIO:
    """`path` opened for writing from its first byte, created if missing (mode 0600). An empty file — a temporary
    file just made — is not truncated; one that holds bytes is (its old content must not survive)."""
    fd = os.open(Path(path), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    handle = open(fd, "wb")  # noqa: SIM115 - the caller closes it
    if os.fstat(fd).st_size:
        handle.truncate()
    return handle
