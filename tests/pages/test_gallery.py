"""The event gallery: signed links, pagination, only this event's completed photos, thumbnails, live wall."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import timedelta
from typing import Any

from click.testing import CliRunner
from PIL import Image

from photobot.cli.main import cli
from photobot.db.models import JobState, utcnow
from photobot.links import gallery_url
from photobot.pages.thumbs import THUMB_SIDE
from photobot.signing import GallerySigner
from photobot.storage.keys import thumb_key
from tests.support.live import read_events
from tests.support.stack import Stack


def link(env: Stack, event_id: int, **kwargs: Any) -> str:
    url = gallery_url(env.base_url, env.settings.secret_keys(), event_id, **kwargs)
    return url.removeprefix(env.base_url)


def photo_ids(html: str) -> list[str]:
    return re.findall(r'<li data-id="([0-9a-f]{32})">', html)


async def test_bad_or_missing_signature_is_403(shared_pages: Stack) -> None:
    env = shared_pages
    event_id = await env.new_event("Signed")
    good = link(env, event_id)
    other = link(env, env.event_id)  # a valid link, but for another event
    expired = link(env, event_id, expires_at=utcnow() - timedelta(seconds=5))
    forged_sig = GallerySigner(["some other secret"]).sign(event_id)
    for url in (
        f"/e/{event_id}/gallery",
        f"/e/{event_id}/gallery?sig=",
        f"/e/{event_id}/gallery?sig=0.garbage",
        f"/e/{event_id}/gallery?sig={forged_sig}",
        f"/e/{event_id}/gallery?{other.split('?')[1]}",
        expired,
        good.replace("sig=0.", "sig=9999999999."),  # stretching the expiry breaks the signature
    ):
        response = await env.client.get(url)
        assert response.status_code == 403, url
        assert response.headers["content-type"].startswith("text/html")
        assert "not valid" in response.text
    assert (await env.client.get(f"/e/{event_id}/gallery/events")).status_code == 403
    assert (await env.client.get(good)).status_code == 200
    future = link(env, event_id, expires_at=utcnow() + timedelta(days=2))
    assert (await env.client.get(future)).status_code == 200


async def test_only_completed_photos_of_the_event_newest_first_paginated(shared_pages: Stack) -> None:
    env = shared_pages
    event_id = await env.new_event("Paginated", title="Gala Night")
    now = utcnow()
    completed = [
        await env.add_job(JobState.completed, event_id=event_id, completed_at=now - timedelta(minutes=i))
        for i in range(5)
    ]  # completed[0] is the newest
    for state in (JobState.pending, JobState.waiting, JobState.failed):
        await env.add_job(state, event_id=event_id)
    await env.add_job(JobState.completed, event_id=event_id, purged_at=now)
    await env.add_job(JobState.completed, event_id=event_id, completed_at=now - timedelta(days=400))
    await env.add_job(JobState.completed)  # another event's photo
    url = link(env, event_id)

    first = await env.client.get(url + "&per=2")
    assert first.status_code == 200
    assert "Gala Night" in first.text
    assert photo_ids(first.text) == [completed[0].id, completed[1].id]
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = await env.client.get(url + "&per=2&page=2")
    assert photo_ids(second.text) == [completed[2].id, completed[3].id]
    assert 'rel="next"' in second.text and 'rel="prev"' in second.text
    third = await env.client.get(url + "&per=2&page=3")
    assert photo_ids(third.text) == [completed[4].id]
    assert 'rel="next"' not in third.text
    everything = await env.client.get(url)
    assert photo_ids(everything.text) == [j.id for j in completed]
    assert f"/p/{completed[0].public_id}" in everything.text
    empty = await env.client.get(link(env, await env.new_event("Empty")))
    assert photo_ids(empty.text) == [] and "No photos yet" in empty.text


async def test_thumbnails_are_made_once_and_reused(shared_pages: Stack) -> None:
    env = shared_pages
    event_id = await env.new_event("Thumbs")
    job = await env.add_job(JobState.completed, event_id=event_id)
    url = link(env, event_id)
    html = (await env.client.get(url)).text
    thumb_url = re.search(r'src="(/e/\d+/thumbs/[0-9a-f]{32}\.jpg\?sig=[^"]+)"', html)
    assert thumb_url is not None
    storage = env.runtime.storage
    assert not await storage.exists(thumb_key(job.id))
    first = await env.client.get(thumb_url.group(1))
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(first.content))
    assert max(image.size) == THUMB_SIDE and image.size == (360, 480)  # 600x800 scaled, aspect kept
    assert await storage.exists(thumb_key(job.id))
    path = storage.path_for(thumb_key(job.id))  # type: ignore[attr-defined]
    made = path.stat().st_mtime_ns
    again = await env.client.get(thumb_url.group(1))
    assert again.content == first.content and path.stat().st_mtime_ns == made  # reused, not remade
    # thumbnails need the gallery signature of the photo's own event
    other = link(env, env.event_id).split("?")[1]
    assert (await env.client.get(f"/e/{event_id}/thumbs/{job.id}.jpg?{other}")).status_code == 403
    wrong_event = f"/e/{env.event_id}/thumbs/{job.id}.jpg?{other}"
    assert (await env.client.get(wrong_event)).status_code == 404


async def test_live_wall_adds_photos_as_they_complete(shared_pages: Stack) -> None:
    env = shared_pages
    event_id = await env.new_event("Wall")
    old = await env.add_job(JobState.completed, event_id=event_id, completed_at=utcnow() - timedelta(minutes=1))
    url = link(env, event_id)
    wall = await env.client.get(url + "&wall=1")
    assert wall.status_code == 200 and "gallery.js" in wall.text and 'class="gallery wall"' in wall.text
    since = re.search(r'data-since="([^"]+)"', wall.text)
    events_url = re.search(r'data-events="([^"]+)"', wall.text)
    assert since and events_url
    events: list[dict[str, Any]] = []
    stream_url = events_url.group(1).replace("&amp;", "&") + "&since=" + since.group(1).replace("+", "%2B")
    async with env.client.stream("GET", stream_url) as response:
        assert response.status_code == 200
        reader = asyncio.create_task(read_events(response, events))
        await asyncio.sleep(0.3)
        new = await env.add_job(JobState.completed, event_id=event_id)
        await env.add_job(JobState.completed)  # another event: not on this wall
        async with asyncio.timeout(5):
            while not events:
                await asyncio.sleep(0.02)
        reader.cancel()
    ids = [e["data"]["id"] for e in events if e["event"] == "photo"]
    assert ids == [new.id] and old.id not in ids
    assert events[0]["data"]["page_url"] == f"/p/{new.public_id}"
    assert await env.runtime.storage.exists(thumb_key(new.id))  # made when the wall first showed it


async def test_cli_prints_a_working_gallery_link(shared_pages: Stack) -> None:
    env = shared_pages
    event_id = await env.new_event("CLI")
    environ = {
        "PHOTOBOT_DATABASE_URL": env.settings.database_url,
        "PHOTOBOT_PUBLIC_BASE_URL": env.base_url,
        "PHOTOBOT_SECRET_KEY": env.settings.secret_keys()[0],
        "PHOTOBOT_VAR_DIR": str(env.settings.var_dir),
    }
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["events", "gallery-link", *args], env=environ, catch_exceptions=False)

    result = await asyncio.to_thread(run, str(event_id), "--json", "--days", "3")
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    assert data["url"].startswith(f"{env.base_url}/e/{event_id}/gallery?sig=")
    assert data["expires_at"] and data["wall_url"] == data["url"] + "&wall=1"
    assert (await env.client.get(data["url"])).status_code == 200
    plain = await asyncio.to_thread(run, str(event_id))
    assert plain.exit_code == 0 and plain.stdout.strip().endswith("?sig=0." + plain.stdout.strip().split("sig=0.")[1])
    missing = await asyncio.to_thread(run, "999999")
    assert missing.exit_code != 0 and "not found" in missing.stderr
    # PHOTOBOT_PUBLIC_BASE_URL unset: the link follows PHOTOBOT_PORT, like the server's own links
    environ.update(PHOTOBOT_PUBLIC_BASE_URL="", PHOTOBOT_PORT=env.base_url.rsplit(":", 1)[1])
    followed = json.loads((await asyncio.to_thread(run, str(event_id), "--json")).stdout)
    assert followed["url"].startswith(f"{env.base_url}/e/{event_id}/gallery?sig=")
    assert (await env.client.get(followed["url"])).status_code == 200
