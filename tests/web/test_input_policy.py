"""One input policy at the edge: control and bidi-override characters in the URL, in JSON texts and in form
fields, and integers no 32-bit column holds, are a 4xx problem and change nothing (they were 500s on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import httpx
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photobot.db import Database
from photobot.db.models import ClientToken, CreditLedger, Event, Job, WebhookEvent
from tests.support.images import jpeg
from tests.support.stack import Stack, StackFactory

JSON = {"Content-Type": "application/json"}


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


_controls = st.sampled_from([chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127, 0x85, 0x202E, 0x2066)])
_hostile_text = st.builds(lambda a, c, b: a + c + b, st.text(max_size=6), _controls, st.text(max_size=6))
_huge_int = st.one_of(
    st.integers(min_value=2**31, max_value=2**70), st.integers(min_value=-(2**70), max_value=-(2**31) - 1)
)
_KIOSK_FIELDS = ["style", "guest_id", "email", "phone", "aspect_ratio", "resolution", "output_format", "image"]
_ADMIN_EVENT_FIELDS = ["name", "title", "footer_text", "language", "credits"]


async def test_generated_hostile_fields_never_get_a_5xx_nor_change_anything(
    pg_database: Database, stack: StackFactory
) -> None:
    async with stack(pg_database, run_dispatcher=False) as env:
        before = await _counts(env)
        loop = asyncio.get_running_loop()
        seen: list[int] = []

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            kiosk_field=st.sampled_from([*_KIOSK_FIELDS, "event_id", "user_id"]),
            admin_field=st.sampled_from(_ADMIN_EVENT_FIELDS),
            text=_hostile_text,
            number=_huge_int,
        )
        def probe(kiosk_field: str, admin_field: str, text: str, number: int) -> None:
            kiosk_value: object = number if kiosk_field in ("event_id", "user_id") else text
            kiosk = {"style": "pb_a", "image": "https://example.com/g.jpg", kiosk_field: kiosk_value}
            admin_value: object = number if admin_field == "credits" else text
            admin = {"name": "Gala", admin_field: admin_value}
            form = {"style": "pb_a", kiosk_field: str(kiosk_value)}
            form.pop("image", None)

            async def send() -> list[int]:
                c = env.client
                answers = [
                    await c.post("/v1/jobs", content=json.dumps(kiosk), headers={**env.admin, **JSON}),
                    await c.post("/v1/jobs", data=form, files={"image": ("g.jpg", jpeg(), "image/jpeg")},
                                 headers=env.admin),
                    await c.post("/v1/admin/events", content=json.dumps(admin), headers={**env.admin, **JSON}),
                    await c.get(f"/v1/jobs/{quote(text, safe='')}", headers=env.auth),
                    await c.get(f"/v1/admin/events/{abs(number)}", headers=env.admin),
                    await c.get("/v1/admin/jobs", params={"event_id": number}, headers=env.admin),
                    await c.get("/v1/admin/jobs", params={"offset": abs(number)}, headers=env.admin),
                    await c.get("/v1/admin/jobs", params={"state": text}, headers=env.admin),
                ]  # fmt: skip
                return [a.status_code for a in answers]

            codes = asyncio.run_coroutine_threadsafe(send(), loop).result(60)
            seen.extend(codes)
            assert all(400 <= code < 500 for code in codes), (codes, kiosk_field, admin_field, text, number)

        await asyncio.to_thread(probe)
        assert seen
        assert await _counts(env) == before
