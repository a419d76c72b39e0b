"""A provider's content refusal through the whole pipeline, on SQLite and PostgreSQL: the kie simulator refuses the
photo as prohibited content (failCode 422), the job fails with `content_blocked`, its credit is released, and the
guest page and the failure e-mail say so kindly."""

from __future__ import annotations

import asyncio
from email.message import Message

from photobot.db import Database
from photobot.db.models import Event
from tests.support.smtp import SMTPServer
from tests.support.stack import StackFactory, fast_sim


def _body(message: Message) -> str:
    parts = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    payload = (parts[0] if parts else message).get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def test_a_refused_photo_fails_kindly_and_costs_nothing(
    database: Database, stack: StackFactory, smtp_server: SMTPServer
) -> None:
    async with stack(database, fast_sim(content_block_rate=1.0), credits=5, smtp_url=smtp_server.url) as env:
        await env.set_event(notify_on_failure=True)
        job_id = await env.submit(email="guest@example.com")
        view = await env.wait_for(job_id, "failed")
        assert view["error"]["code"] == "content_blocked"
        assert await env.ledger(job_id) == ["reserve", "release"]
        async with env.db.session() as session:
            event = await session.get(Event, env.event_id)
        assert event is not None and event.credits == 5

        job = await env.job(job_id)
        page = await env.client.get(f"/p/{job.public_id}")
        assert page.status_code == 200
        assert "We could not use this photo" in page.text and "you were not charged" in page.text
        assert "prohibited" not in page.text  # the provider's own words stay internal
        state = (await env.client.get(f"/p/{job.public_id}.json")).json()
        assert state == {"status": "failed", "updated_at": state["updated_at"], "error": {"code": "content_blocked"}}

        for _ in range(200):
            if smtp_server.messages:
                break
            await asyncio.sleep(0.05)
        (mail,) = smtp_server.messages
        assert mail["Subject"].startswith("We could not use your photo")
        text = _body(mail)
        assert "declined" in text and "not charged" in text and "prohibited" not in text
