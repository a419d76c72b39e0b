"""`GET /v1/styles` and the event's style selection: an event offers its chosen styles in its order, each with a
preview image from the catalogue; intake refuses a style the event does not offer."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from photobot.db import Database
from photobot.db.models import Style
from photobot.services.styles import StyleIn, upsert_styles
from tests.support.api import assert_accepted, assert_problem, submit_multipart, unchanged
from tests.support.stack import Stack, StackFactory


async def _styles(env: Stack, token: str | None = None) -> list[dict[str, object]]:
    response = await env.client.get("/v1/styles", headers=env.auth_as(token))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, max-age=60"
    return response.json()["styles"]  # type: ignore[no-any-return]


async def test_an_event_offers_its_styles_in_its_order_with_previews(database: Database, stack: StackFactory) -> None:
    async with stack(database, simulator=False, run_dispatcher=False) as env:
        async with env.db.session() as session:  # the stack stored the shipped previews; one style has none
            await upsert_styles(
                session, [StyleIn(id="t2i", name="Castle", prompt="a castle", model="google/nano-banana")]
            )

        everything = await _styles(env)  # no selection yet: every active style, by id
        assert [s["id"] for s in everything] == sorted(s["id"] for s in everything)
        assert len(everything) == 11
        by_id = {s["id"]: s for s in everything}
        assert by_id["t2i"] == {"id": "t2i", "name": "Castle", "takes_photo": False, "preview_url": None}
        shipped = [s for s in everything if s["id"] != "t2i"]
        assert all(s["takes_photo"] is True and s["preview_url"] for s in shipped)
        async with httpx.AsyncClient(timeout=10) as plain:
            for style in shipped:
                got = await plain.get(str(style["preview_url"]))
                assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
                with Image.open(io.BytesIO(got.content)) as image:
                    assert image.size == (384, 384)

        patched = await env.client.patch(
            f"/v1/admin/events/{env.event_id}", json={"styles": ["pb_c", "t2i", "pb_a", "pop_art"]}, headers=env.admin
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["styles"] == ["pb_c", "t2i", "pb_a", "pop_art"]
        async with env.db.session() as session:
            retired = await session.get(Style, "pop_art")
            assert retired is not None
            retired.active = False
        assert [s["id"] for s in await _styles(env)] == ["pb_c", "t2i", "pb_a"]  # its order; inactive left out
        assert len(await _styles(env, env.app_token)) == 10  # an app token has no event: every active style

        # intake follows the selection
        async with unchanged(env):
            body = assert_problem(await submit_multipart(env, style="pb_b"), 422, "style_not_offered")
            assert body["field"] == "style"
        assert_accepted(await submit_multipart(env, style="pb_c"))
        # an app token charging the event is held to the same selection
        refused = await submit_multipart(env, token=env.app_token, style="pb_b", event_id=env.event_id)
        assert_problem(refused, 422, "style_not_offered")

        # [] offers every active style again
        reset = await env.client.patch(f"/v1/admin/events/{env.event_id}", json={"styles": []}, headers=env.admin)
        assert reset.status_code == 200 and reset.json()["styles"] == []
        assert len(await _styles(env)) == 10
        assert_accepted(await submit_multipart(env, style="pb_b"))
