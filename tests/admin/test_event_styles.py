"""An event's style selection through the admin API: each refusal (unknown style, a style twice, wrong shapes)
is a 422 that changes nothing; null leaves the selection as it is; [] offers every style again."""

from __future__ import annotations

from photobot.db import Database
from photobot.db.models import Event
from tests.support.api import assert_problem
from tests.support.stack import StackFactory


async def test_event_styles_are_checked_and_stored_in_order(database: Database, ops_app: StackFactory) -> None:
    async with ops_app(database, run_dispatcher=False) as env:
        c, h = env.client, env.admin
        created = await c.post("/v1/admin/events", json={"name": "Gala", "styles": ["fantasy", "pb_b"]}, headers=h)
        assert created.status_code == 201, created.text
        eid = created.json()["id"]
        assert created.json()["styles"] == ["fantasy", "pb_b"]
        url = f"/v1/admin/events/{eid}"

        for payload, code, fragment in (
            ({"styles": ["pb_a", "no_such_style"]}, "invalid", "no such style: no_such_style"),
            ({"styles": ["pb_a", "pb_c", "pb_a"]}, "invalid", "pb_a is listed twice"),
            ({"styles": "pb_a,pb_c"}, "validation_error", "styles"),
            ({"styles": [""]}, "validation_error", "styles"),
            ({"styles": ["x" * 65]}, "validation_error", "styles"),
            ({"styles": [1, 2]}, "validation_error", "styles"),
        ):
            body = assert_problem(await c.patch(url, json=payload, headers=h), 422, code)
            assert fragment in body["detail"] or any(fragment in str(e) for e in body.get("errors", [])), body
        refused = await c.post("/v1/admin/events", json={"name": "Bad", "styles": ["nope"]}, headers=h)
        assert_problem(refused, 422, "invalid")

        async with env.db.session() as session:
            stored = await session.get(Event, eid)
            assert stored is not None and stored.styles == ["fantasy", "pb_b"]  # nothing changed
            assert [e.name for e in (await session.execute(Event.__table__.select())).all()].count("Bad") == 0

        kept = await c.patch(url, json={"styles": None, "title": "The Gala"}, headers=h)
        assert kept.status_code == 200 and kept.json()["styles"] == ["fantasy", "pb_b"]
        moved = await c.patch(url, json={"styles": ["pb_b", "suit_b", "fantasy"]}, headers=h)
        assert moved.status_code == 200 and moved.json()["styles"] == ["pb_b", "suit_b", "fantasy"]
        assert (await c.get(url, headers=h)).json()["styles"] == ["pb_b", "suit_b", "fantasy"]
        cleared = await c.patch(url, json={"styles": []}, headers=h)
        assert cleared.status_code == 200 and cleared.json()["styles"] == []
