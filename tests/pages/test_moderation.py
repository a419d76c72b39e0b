"""Moderation and retention on the gallery and live wall, over real HTTP on SQLite and PostgreSQL: with
`moderation: approve` only approved photos are shown; `hide` takes a photo off the gallery and sends the live wall a
`remove` message; approving shows it again; the guest's own page always shows their photo; an event's own
`retention_days` decides how long its photos are shown and kept."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

from photobot.db.models import JobState, utcnow
from photobot.links import gallery_url
from tests.support.live import read_events
from tests.support.stack import Stack


def _link(env: Stack, event_id: int) -> str:
    return gallery_url(env.base_url, env.settings.secret_keys(), event_id).removeprefix(env.base_url)


def _ids(html: str) -> list[str]:
    return re.findall(r'<li data-id="([0-9a-f]{32})">', html)


async def _gallery(env: Stack, event_id: int) -> list[str]:
    response = await env.client.get(_link(env, event_id))
    assert response.status_code == 200
    return _ids(response.text)


async def _act(env: Stack, job_id: str, action: str) -> dict[str, Any]:
    response = await env.client.post(f"/v1/admin/jobs/{job_id}/{action}", headers=env.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _wait_for(events: list[dict[str, Any]], count: int) -> None:
    async with asyncio.timeout(8):
        while len(events) < count:
            await asyncio.sleep(0.02)


async def test_approve_mode_shows_only_approved_photos_and_hide_removes_them_live(pages: Stack) -> None:
    env = pages
    event_id = await env.new_event("Moderated", moderation="approve")
    older = await env.add_job(JobState.completed, event_id=event_id, completed_at=utcnow() - timedelta(minutes=2))
    newer = await env.add_job(JobState.completed, event_id=event_id)
    assert await _gallery(env, event_id) == []
    thumb = _link(env, event_id).replace("/gallery?", f"/thumbs/{newer.id}.jpg?")
    assert (await env.client.get(thumb)).status_code == 404  # not approved: no thumbnail either
    guest = await env.client.get(f"/p/{newer.public_id}")  # the guest's own page shows it anyway
    assert guest.status_code == 200 and 'id="photo"' in guest.text and "src=" in guest.text

    wall = await env.client.get(_link(env, event_id) + "&wall=1")
    since = re.search(r'data-since="([^"]+)"', wall.text)
    events_url = re.search(r'data-events="([^"]+)"', wall.text)
    assert since and events_url
    stream = events_url.group(1).replace("&amp;", "&") + "&since=" + since.group(1).replace("+", "%2B")
    events: list[dict[str, Any]] = []
    async with env.client.stream("GET", stream) as response:
        reader = asyncio.create_task(read_events(response, events))
        await asyncio.sleep(0.3)
        assert events == []  # completed but not approved: not on the wall

        approved = await _act(env, older.id, "approve")  # approved now: it appears now, at the top
        assert approved["approved_at"] is not None
        await _wait_for(events, 1)
        assert (events[0]["event"], events[0]["data"]["id"]) == ("photo", older.id)
        assert await _gallery(env, event_id) == [older.id]
        assert (await env.client.get(thumb.replace(newer.id, older.id))).status_code == 200

        await _act(env, newer.id, "approve")
        await _wait_for(events, 2)
        assert await _gallery(env, event_id) == [newer.id, older.id]  # newest approval first

        hidden = await _act(env, older.id, "hide")
        assert hidden["hidden_at"] is not None
        await _wait_for(events, 3)
        assert (events[2]["event"], events[2]["data"]) == ("remove", {"id": older.id})
        assert await _gallery(env, event_id) == [newer.id]
        assert (await env.client.get(f"/p/{older.public_id}")).status_code == 200  # still the guest's

        await _act(env, older.id, "approve")  # shown again
        await _wait_for(events, 4)
        assert (events[3]["event"], events[3]["data"]["id"]) == ("photo", older.id)
        reader.cancel()
    assert await _gallery(env, event_id) == [older.id, newer.id]


async def test_auto_mode_shows_photos_at_once_and_hide_still_works(pages: Stack) -> None:
    env = pages
    event_id = await env.new_event("Open")
    shown = await env.add_job(JobState.completed, event_id=event_id)
    other = await env.add_job(JobState.completed, event_id=event_id)
    assert set(await _gallery(env, event_id)) == {shown.id, other.id}
    again = await _act(env, shown.id, "hide")
    assert (await _act(env, shown.id, "hide"))["hidden_at"] == again["hidden_at"]  # hiding twice changes nothing
    assert await _gallery(env, event_id) == [other.id]
    await _act(env, shown.id, "approve")
    assert await _gallery(env, event_id) == [shown.id, other.id]


async def test_the_events_own_retention_decides_what_is_shown_and_kept(pages: Stack) -> None:
    env = pages
    event_id = await env.new_event("Short", retention_days=2)
    old = await env.add_job(JobState.completed, event_id=event_id, completed_at=utcnow() - timedelta(days=3))
    fresh = await env.add_job(JobState.completed, event_id=event_id, completed_at=utcnow() - timedelta(days=1))
    assert await _gallery(env, event_id) == [fresh.id]
    expired = await env.client.get(f"/p/{old.public_id}")
    assert expired.status_code == 410 and "2 days" in expired.text
    page = await env.client.get(f"/p/{fresh.public_id}")
    assert page.status_code == 200 and "2 days" in page.text
    # the default (30 days) still holds for other events
    default = await env.add_job(JobState.completed, completed_at=utcnow() - timedelta(days=3))
    assert (await env.client.get(f"/p/{default.public_id}")).status_code == 200
