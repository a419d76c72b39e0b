"""`files.open_fresh`: writes from the first byte, never leaves old bytes behind, and opens an empty file without
`O_TRUNC` (which makes ext4 flush the file to disk when it is closed, in the closing thread)."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from photobot.files import open_fresh

_FLAGS: list[tuple[str, int]] = []
_RECORDING: list[bool] = []  # an audit hook cannot be removed: installed once, recording only while _RECORDING[0]


def _record(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING and _RECORDING[0] and event == "open" and isinstance(args[0], str | os.PathLike):
        _FLAGS.append((os.fspath(args[0]), int(args[2])))


def _opened(path: Path, data: bytes) -> list[int]:
    if not _RECORDING:
        sys.addaudithook(_record)
        _RECORDING.append(False)
    _FLAGS.clear()
    _RECORDING[0] = True
    try:
        with open_fresh(path) as out:
            out.write(data)
    finally:
        _RECORDING[0] = False
    return [flags for name, flags in _FLAGS if name == os.fspath(path)]


def test_an_empty_temporary_file_is_written_without_truncation(tmp_path: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=tmp_path, delete=False) as handle:
        path = Path(handle.name)
    flags = _opened(path, b"photo")
    assert flags and not any(f & os.O_TRUNC for f in flags)
    assert path.read_bytes() == b"photo"


def test_old_bytes_never_survive_and_a_new_file_is_private(tmp_path: Path) -> None:
    old = tmp_path / "old.bin"
    old.write_bytes(b"x" * 1000)
    _opened(old, b"short")
    assert old.read_bytes() == b"short"
    new = tmp_path / "new.bin"
    _opened(new, b"")
    assert new.read_bytes() == b"" and stat.S_IMODE(new.stat().st_mode) == 0o600
