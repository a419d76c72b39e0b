"""Profile a running server with py-spy (`py-spy record --pid`, raw collapsed stacks) and summarise it.

The summary names what dominates: the top leaf frames (self time) and the heaviest photobot frames
(inclusive time), as shares of all samples of the process. py-spy comes with the dev extra
(`make install-dev`); without it the profile is skipped and says so.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

PY_SPY = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


def start(pid: int, duration_s: float, out: Path, rate: int = 67) -> subprocess.Popen[bytes] | None:
    if PY_SPY is None:
        return None
    return subprocess.Popen(
        [PY_SPY, "record", "--pid", str(pid), "--duration", str(int(duration_s)), "--rate", str(rate),
         "--format", "raw", "--output", str(out), "--nonblocking", "--subprocesses", "--threads"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def summarise(path: Path, top: int = 25) -> dict[str, Any]:
    if not path.exists():
        return {"skipped": "py-spy not available or no samples"}
    total = 0
    leaf: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        leaf[_short(frames[-1])] += n
        thread = next((f for f in frames[:3] if f.startswith("thread ")), "thread ?")
        threads["main" if "MainThread" in thread else "worker threads (to_thread)"] += n
        for frame in {_short(f) for f in frames if any(m in f for m in WATCH)}:
            inclusive[frame] += n
    share = lambda n: round(100 * n / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "self_top": [(f, share(n)) for f, n in leaf.most_common(top)],
        "threads": {name: share(n) for name, n in threads.items()},
        "inclusive_top": [(f, share(n)) for f, n in inclusive.most_common(top * 3)],
    }


WATCH = (
    "photobot/",
    "sqlalchemy/",
    "limits/",
    "slowapi/",
    "redis/",
    "asyncpg/",
    "itsdangerous/",
    "json/",
    "starlette/",
    "uvicorn/",
    "prometheus_client/",
    "logging/",
)


def _short(frame: str) -> str:
    """`func (path/to/site-packages/pkg/mod.py:123)` → `pkg/mod.py:func`."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{name}"
