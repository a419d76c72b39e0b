"""One input policy at the edge: control and bidi-override characters in the URL, in JSON texts and in form
fields, and integers no 32-bit column holds, are a 4xx problem and change nothing (they were 500s on PostgreSQL)."""

from __future__ import annotations

import json

import httpx
import sqlalchemy as sa

from photobot.db import Database
from photobot.db.models import ClientToken, CreditLedger, Event, Job, WebhookEvent
from tests.support.images import jpeg
from tests.support.stack import Stack, StackFactory


def _refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    assert response.json()["code"] == code, response.text


async def _counts(env: Stack) -> tuple[int, ...]:
    counts = []
    async with env.db.session() as session:
        for table in (Job, Event, ClientToken, CreditLedger, WebhookEvent):
            counts.append(int((await session.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()))
    return tuple(counts)


async def test_hostile_values_are_refused_at_the_edge(database: Database, stack: StackFactory) -> None:
    async with stack(database, run_dispatcher=False) as env:
        before = await _counts(env)
        c = env.client
        for path in ("/v1/jobs/%00abc", "/v1/admin/jobs/ab%00cd", "/v1/jobs/x%E2%80%AEy", "/webhooks/kie?token=a%00b"):
            headers = env.admin if "admin" in path else env.auth
            response = await (c.post(path, content=b"{}") if "webhooks" in path else c.get(path, headers=headers))
            _refused(response, 400, "invalid_characters")
        _refused(await c.get("/v1/admin/events/99999999999", headers=env.admin), 404, "not_found")
        _refused(await c.get("/v1/admin/events/99999999999/stats", headers=env.admin), 404, "not_found")

        json_kiosk = {**env.auth, "Content-Type": "application/json"}
        json_admin = {**env.admin, "Content-Type": "application/json"}
        image = "https://example.com/guest.jpg"
        for fields, headers in (
            ({"style": "pb_a", "image": image, "guest_id": "a\x00b"}, json_kiosk),
            ({"style": "pb_a", "image": image, "guest_id": "abc\u202egnp.exe"}, json_kiosk),
            ({"style": "pb\x00_a", "image": image}, json_kiosk),
            ({"style": "pb_a", "image": image, "event_id": 2**40}, {**env.admin, "Content-Type": "application/json"}),
        ):
            _refused(await c.post("/v1/jobs", content=json.dumps(fields), headers=headers), 422, "validation_error")
        for form in ({"style": "pb_a", "guest_id": "a\x00b"}, {"style": "pb_a", "guest_id": "a\x1bb"}):
            response = await c.post("/v1/jobs", data=form, files={"image": ("g.jpg", jpeg(), "image/jpeg")},
                                    headers=env.auth)  # fmt: skip
            _refused(response, 422, "validation_error")
        response = await c.post("/v1/jobs", data={"style": "pb_a", "event_id": "99999999999"},
                                files={"image": ("g.jpg", jpeg(), "image/jpeg")}, headers=env.admin)  # fmt: skip
        _refused(response, 422, "validation_error")
        for payload in ({"name": "Gala\x00"}, {"name": "Gala", "credits": 2**40}, {"name": "\u2066Gala"}):
            _refused(await c.post("/v1/admin/events", content=json.dumps(payload), headers=json_admin), 422,
                     "validation_error")  # fmt: skip
        assert await _counts(env) == before
