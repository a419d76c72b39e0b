"""First contact: `PHOTOBOT_PORT=N make run` (= `photobot bootstrap` then `photobot serve`, nothing else set) on a
fresh directory serves on N, prints a curl after the listening line that works as pasted, and that job completes
within 5 s through the simulator's callback (not the reconciler, which would take 45 s)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from photobot.cli.server import sample_photo, try_it
from photobot.db import Database
from photobot.db.models import Job, JobTransition, WebhookEvent
from photobot.settings import load_settings
from tests.support.processes import PHOTOBOT, photobot_env, photobot_server
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(300)


def printed_curl(output: str) -> str:
    """The curl command printed after the listening line: from `curl` to the first line without a `\\`."""
    lines = output[output.index("Uvicorn running on") :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("curl "))
    end = next(i for i in range(start, len(lines)) if not lines[i].endswith("\\"))
    return "\n".join(lines[start : end + 1])


async def run_shell(command: str, cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", command, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_make_run_on_a_fresh_directory_serves_and_its_curl_completes_through_the_callback(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = photobot_env(PHOTOBOT_PORT=str(port), PHOTOBOT_ENV="development", PHOTOBOT_LOG_FORMAT="console")
    proc = await asyncio.create_subprocess_exec(
        str(PHOTOBOT), "bootstrap", env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    out, err = stdout.decode(), stderr.decode()
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/v1/purchases" in out  # bootstrap's own curl follows the port too
    async with photobot_server("serve", env=env, cwd=tmp_path, port=port) as server:
        output = await server.wait_for("The answer's page_url")
        assert f"Uvicorn running on http://127.0.0.1:{port}" in output
        assert re.search(r"provider: the built-in simulator at \S+, for kie and fal styles \(no kie.ai", output)
        curl = printed_curl(output)
        assert f"http://127.0.0.1:{port}/v1/jobs" in curl and "path/to" not in curl

        started = time.monotonic()
        code, answer, err = await run_shell(curl, tmp_path)  # as pasted, from the directory serve runs in
        assert code == 0, err
        job = json.loads(answer)
        assert job["status"] == "pending", answer
        for name in ("status_url", "page_url", "qr_url"):
            assert job[name].startswith(f"http://127.0.0.1:{port}/"), job
        token = re.search(r"Bearer (pbt_\S+)\"", curl)
        assert token is not None
        async with httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {token[1]}"}) as client:
            while (view := (await client.get(job["status_url"])).json())["status"] not in ("completed", "failed"):
                assert time.monotonic() - started < 5.0, view
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - started
            assert view["status"] == "completed", view
            assert elapsed < 5.0
            assert (await client.get(view["result_url"])).status_code == 200
        await server.wait_for(f"simulator: callbacks to http://127.0.0.1:{port} reach this server")

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'photobot.db'}")
    try:
        async with db.session() as session:
            row = await session.get(Job, job["id"])
            assert row is not None and row.callback_at is not None
            notes = (
                await session.execute(sa.select(JobTransition.note).where(col(JobTransition.job_id) == job["id"]))
            ).scalars()
            assert "reconciled" not in list(notes)
            task = col(WebhookEvent.task_id) == row.provider_task_id
            assert len(list((await session.execute(sa.select(WebhookEvent).where(task))).scalars())) == 1
    finally:
        await db.close()


async def test_a_public_base_url_that_does_not_reach_the_server_is_reported_at_start(tmp_path: Path) -> None:
    port, elsewhere = free_port(), free_port()
    env = photobot_env(
        PHOTOBOT_PORT=str(port), PHOTOBOT_PUBLIC_BASE_URL=f"http://127.0.0.1:{elsewhere}",
        PHOTOBOT_LOG_FORMAT="console",
    )  # fmt: skip
    async with photobot_server("serve", env=env, cwd=tmp_path, port=port) as server:
        output = await server.wait_for("cannot reach this server", timeout_s=60)
    line = next(line for line in output.splitlines() if "cannot reach this server" in line)
    assert f"simulator: callbacks to http://127.0.0.1:{elsewhere} cannot reach this server (ConnectError)" in line
    assert "reconciler" in line and "PHOTOBOT_PUBLIC_BASE_URL" in line


def test_the_curl_names_the_sample_photo_by_a_path_that_exists_from_where_it_runs(tmp_path: Path) -> None:
    settings = load_settings(env_file=None, var_dir=tmp_path, env="development", port=8765)
    assert try_it(settings) is None  # before bootstrap made the demo token: nothing to try with
    (tmp_path / "demo-token.txt").write_text("pbt_demo\n")
    from_repo = try_it(settings, cwd=ROOT)
    assert from_repo is not None
    assert "-F image=@src/photobot/data/sample-photo.jpg" in from_repo
    assert (ROOT / "src/photobot/data/sample-photo.jpg").is_file()
    elsewhere = try_it(settings, cwd=tmp_path)
    assert elsewhere is not None and f"-F image=@{sample_photo()}" in elsewhere
    assert 'Bearer pbt_demo"' in from_repo and "http://127.0.0.1:8765/v1/jobs" in from_repo
    production = load_settings(env_file=None, var_dir=tmp_path, env="test")
    assert try_it(production) is None  # a token is printed in development only


def test_the_sample_photo_is_a_small_real_jpeg() -> None:
    from PIL import Image

    photo = sample_photo()
    assert photo.stat().st_size < 300_000
    with Image.open(photo) as image:
        assert image.format == "JPEG" and image.size == (768, 1024)
        image.load()
