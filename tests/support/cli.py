"""`photobot …` commands run as real child processes on a test database, and the CLI's output contract.

The contract every command keeps: `--json` prints exactly one JSON document on stdout (nothing else); an error
exits non-zero with exactly one line on stderr, nothing on stdout and no traceback. `Result.json()` and
`Result.failed()` check it. The children get `photobot_env` (no PHOTOBOT_* leaking in, a private bytecode cache).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.processes import PHOTOBOT, photobot_env


@dataclass
class Result:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, f"{self.args}: exit {self.code}: {self.err}"
        return json.loads(self.out)  # the whole of stdout is one JSON document

    def ok(self) -> Result:
        assert self.code == 0, f"{self.args}: exit {self.code}: {self.err}"
        return self

    def failed(self, *fragments: str) -> str:
        """Assert the error contract and return the one stderr line."""
        assert self.code != 0, f"{self.args} should fail, printed {self.out!r}"
        assert self.out == "", f"{self.args}: stdout on error: {self.out!r}"
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"{self.args}: expected one stderr line, got {self.err!r}"
        assert "Traceback" not in self.err
        for fragment in fragments:
            assert fragment in lines[0], f"{self.args}: {fragment!r} not in {lines[0]!r}"
        return lines[0]


async def run_photobot(
    db_url: str, workdir: Path, *args: str, var_dir: Path | None = None, timeout_s: float = 240, **env_extra: str
) -> Result:
    """`photobot *args` in `workdir` (no stray .env is read there) on the database at `db_url`."""
    settings = {
        "PHOTOBOT_DATABASE_URL": db_url,
        "PHOTOBOT_VAR_DIR": str(var_dir or workdir / "var"),
        "PHOTOBOT_LOG_LEVEL": "WARNING",
    }
    env = photobot_env(**{**settings, **env_extra})  # the test's own settings win
    proc = await asyncio.create_subprocess_exec(
        str(PHOTOBOT), *args, cwd=workdir, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(args, proc.returncode, out.decode(), err.decode())


def ok(result: Result) -> Any:
    """The JSON document of a command that must succeed."""
    return result.json()


def failed(result: Result, fragment: str) -> None:
    """A command that must fail with one stderr line containing `fragment`."""
    result.failed(fragment)
