"""`photobot serve` obeys PHOTOBOT_LOG_LEVEL for uvicorn's lines too: at WARNING no access line per request."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.processes import photobot_env, photobot_server
from tests.support.servers import free_port


async def _serve_and_get(sqlite_url: str, var_dir: Path, level: str, port: int) -> str:
    """Serve, answer three requests, stop; return what the process wrote on stderr."""
    env = photobot_env(
        PHOTOBOT_DATABASE_URL=sqlite_url, PHOTOBOT_VAR_DIR=str(var_dir),
        PHOTOBOT_SECRET_KEY="test-secret-key-" + "z" * 32, PHOTOBOT_LOG_LEVEL=level, PHOTOBOT_LOG_FORMAT="json",
    )  # fmt: skip
    args = ("serve", "--no-worker", "--port", str(port))
    async with (
        photobot_server(*args, env=env, cwd=var_dir, port=port) as server,
        httpx.AsyncClient(timeout=2) as client,
    ):
        for _ in range(3):
            assert (await client.get(f"{server.base_url}/healthz?probe=1")).status_code == 200
    return server.output()


@pytest.mark.parametrize(("level", "access_lines"), [("INFO", 3), ("WARNING", 0)])
async def test_access_log_follows_the_log_level(sqlite_url: str, tmp_path: Path, level: str, access_lines: int) -> None:
    port = free_port()
    output = await _serve_and_get(sqlite_url, tmp_path, level, port)
    assert sum("/healthz?probe=1" in line for line in output.splitlines()) == access_lines, output
    # The in-process simulators leave the host's logging alone: one "running on" line, this server's (at INFO).
    running = [line for line in output.splitlines() if "Uvicorn running on" in line]
    assert running == ([] if level == "WARNING" else [running[0]]), output
    if running:
        assert f"http://127.0.0.1:{port}" in running[0]
