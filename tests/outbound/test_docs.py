"""docs/webhooks.md runs as written: its Python receiver, started as its own process, verifies what Photobot's sender
sends (also during a secret rotation), deduplicates a replay and refuses a forged message; its shell block runs
against a fresh database."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from photobot.db import Database
from photobot.db.migrate import upgrade
from photobot.db.models import WebhookEndpoint
from photobot.outbound import outbox
from photobot.outbound.sender import WebhookSender
from photobot.services import webhooks as svc
from photobot.settings import Settings
from photobot.signing import generate_webhook_secret, webhook_signature
from tests.support.servers import free_port
from tests.support.workers import PYCACHE

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
pytestmark = pytest.mark.timeout(300)


def block(language: str, after: str) -> str:
    """The first fenced block of `language` after the line `after` in docs/webhooks.md."""
    text = DOC.read_text()
    start = text.index(after)
    match = re.search(rf"^```{language}\n(.*?)^```", text[start:], re.M | re.S)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


class DocReceiver:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc, self.url = proc, url
        self.lines: list[str] = []

    def read_lines(self, count: int, timeout: float = 10.0) -> list[str]:
        """Until the receiver printed `count` lines in all (it prints one per message it handled)."""
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            chunk = self.proc.stdout.readline()
            if chunk:
                self.lines.append(chunk.rstrip("\n"))
            else:
                time.sleep(0.02)
        return self.lines


@pytest.fixture
async def doc_receiver(tmp_path: Path) -> AsyncIterator[tuple[DocReceiver, str]]:
    source = tmp_path / "receiver.py"
    source.write_text(block("python", "A complete receiver in Python"))
    secret = generate_webhook_secret()
    port = free_port()
    env = {**os.environ, "PHOTOBOT_WEBHOOK_SECRET": secret, "PORT": str(port)}
    proc = subprocess.Popen([sys.executable, str(source)], env=env, stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/photobot"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    await client.get(url)  # any answer: it listens
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, "the documented receiver exited"
                    await asyncio.sleep(0.05)
        yield DocReceiver(proc, url), secret
    finally:
        proc.kill()
        proc.wait(5)


async def test_the_documented_receiver_verifies_and_deduplicates(
    plain_db: Database, make_settings: Callable[..., Settings], doc_receiver: tuple[DocReceiver, str]
) -> None:
    receiver, secret = doc_receiver
    settings = make_settings(allow_private_networks=True, webhook_secret_overlap_s=600)
    async with plain_db.session() as session:
        endpoint = WebhookEndpoint(url=receiver.url, secret=secret, types=list(outbox.EVENT_TYPES))
        session.add(endpoint)
        await session.flush()
        endpoint_id = endpoint.id
        assert endpoint_id is not None
    async with plain_db.session() as session:
        message_id = await outbox.publish(session, "credits.low", {"event_id": 1, "balance": 5, "threshold": 50})
    assert message_id is not None
    sender = WebhookSender(plain_db, settings, None)
    try:
        await sender.run_due()
        assert receiver.read_lines(1) == ['credits.low {"balance": 5, "event_id": 1, "threshold": 50}']
        async with plain_db.session() as session:
            assert (await svc.deliveries(session, endpoint_id))[0]["history"][0]["status"] == 204

        # a replay arrives with the same webhook-id: acknowledged, not handled twice
        async with plain_db.session() as session:
            await svc.replay(session, message_id)
        await sender.run_due()
        async with plain_db.session() as session:
            assert [h["status"] for h in (await svc.deliveries(session, endpoint_id))[0]["history"]] == [204, 204]

        # after a rotation the receiver still holds the old secret: the second signature keeps it working
        async with plain_db.session() as session:
            await svc.rotate_secret(session, settings, endpoint_id)
            await outbox.publish(session, "job.failed", {"job_id": "j2", "error": {"code": "timeout"}})
        await sender.run_due()
        assert receiver.read_lines(2)[1] == 'job.failed {"error": {"code": "timeout"}, "job_id": "j2"}'
    finally:
        await sender.aclose()

    # a message signed with another secret is refused
    body = '{"type":"job.completed","timestamp":"2026-12-04T00:00:00.000Z","data":{}}'
    now = int(time.time())
    forged = webhook_signature([generate_webhook_secret()], "msg_forged", now, body)
    async with httpx.AsyncClient() as client:
        r = await client.post(receiver.url, content=body, headers={
            "webhook-id": "msg_forged", "webhook-timestamp": str(now), "webhook-signature": forged})  # fmt: skip
    assert r.status_code == 401
    assert len(receiver.read_lines(3, timeout=0.5)) == 2


async def test_the_documented_shell_block_runs(tmp_path: Path) -> None:
    database = tmp_path / "photobot.db"
    await asyncio.to_thread(upgrade, f"sqlite+aiosqlite:///{database}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOBOT_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", PYTHONPYCACHEPREFIX=str(PYCACHE),
        PHOTOBOT_DATABASE_URL=f"sqlite+aiosqlite:///{database}", PHOTOBOT_VAR_DIR=str(tmp_path / "var"),
    )  # fmt: skip
    script = "set -e\n" + block("sh", "## Managing endpoints")
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", script, env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "secret: whsec_" in text and "https://crm.example.com/photobot" in text
