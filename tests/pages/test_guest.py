"""The guest page /p/{public_id}: every state as HTML, 404 and 410, the JSON fallback, SSE, QR codes."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta
from typing import Any

import httpx
import zxingcpp
from PIL import Image

from photobot.bus import JOB_CHANNEL_PREFIX
from photobot.db.models import Job, JobState, utcnow
from tests.support.images import striped_png
from tests.support.live import read_events
from tests.support.stack import Stack


async def page(env: Stack, job: Job | str) -> httpx.Response:
    public_id = job if isinstance(job, str) else job.public_id
    return await env.client.get(f"/p/{public_id}")


def visible_sections(html: str) -> set[str]:
    """Which of the three state sections are rendered without `hidden`."""
    shown = set()
    for name in ("progress", "done", "failed"):
        start = html.index(f'id="{name}"')
        tag = html[html.rindex("<section", 0, start) : html.index(">", start)]
        if " hidden" not in tag:
            shown.add(name)
    return shown


async def test_pending_and_processing_pages_show_progress_and_branding(pages: Stack) -> None:
    await pages.set_event(
        title="Ana & Budi's Wedding",
        primary_color="#e0457b",
        footer_text="Photos by Booth & Co",
        logo_url="https://cdn.example.com/logo.png",
    )
    for state, label in ((JobState.pending, "Waiting in line"), (JobState.waiting, "Creating your photo")):
        job = await pages.add_job(state)
        response = await page(pages, job)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        html = response.text
        assert visible_sections(html) == {"progress"}
        assert label in html
        assert "Ana &amp; Budi&#39;s Wedding" in html  # escaped
        assert "--brand: #e0457b" in html
        assert "Photos by Booth &amp; Co" in html
        assert 'src="https://cdn.example.com/logo.png"' in html
        assert 'http-equiv="refresh"' in html  # no-JS fallback: reload while in progress
        assert 'role="status"' in html and 'aria-live="polite"' in html
        assert '<html lang="en">' in html


async def test_completed_page_shows_photo_download_and_share(shared_pages: Stack) -> None:
    pages = shared_pages
    job = await pages.add_job(JobState.completed)
    response = await page(pages, job)
    assert response.status_code == 200
    html = response.text
    assert visible_sections(html) == {"done"}
    assert 'id="photo"' in html and f"/media/results/{job.id}.png?" in html
    assert 'id="download"' in html and "filename=photobot-" in html
    assert 'id="share"' in html  # shown by the script where navigator.share exists
    assert "http-equiv" not in html
    # the photo link works
    start = html.index('id="photo"')
    src = html[html.index('src="', start) + 5 : html.index('"', html.index('src="', start) + 5)]
    image = await pages.client.get(src.replace("&amp;", "&"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


async def test_failed_page_is_friendly_and_hides_internal_errors(shared_pages: Stack) -> None:
    pages = shared_pages
    job = await pages.add_job(JobState.failed)
    html = (await page(pages, job)).text
    assert visible_sections(html) == {"failed"}
    assert "could not make your photo" in html
    assert "internal detail" not in html
    data = (await pages.client.get(f"/p/{job.public_id}.json")).json()
    assert data["status"] == "failed" and data["error"] == {"code": "provider_generation_failed"}
    assert "internal detail" not in json.dumps(data)


async def test_event_language_is_used(shared_pages: Stack) -> None:
    pages = shared_pages
    event_id = await pages.new_event(language="id")
    job = await pages.add_job(JobState.pending, event_id=event_id)
    html = (await page(pages, job)).text
    assert '<html lang="id">' in html and "Foto kamu sedang dibuat" in html


async def test_unknown_page_is_404_html(shared_pages: Stack) -> None:
    pages = shared_pages
    for public_id in ("NoSuchJobAtAll123", "x", "has.dots.in.it"):
        response = await page(pages, public_id)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "Photo not found" in response.text
    assert (await pages.client.get("/p/NoSuchJobAtAll123.json")).status_code == 404
    assert (await pages.client.get("/p/NoSuchJobAtAll123/qr.png")).status_code == 404
    assert (await pages.client.get("/p/NoSuchJobAtAll123/events")).status_code == 404


async def test_expired_pages_are_410(pages: Stack) -> None:
    ttl = pages.settings.result_ttl_days
    old = utcnow() - timedelta(days=ttl, minutes=1)
    past_ttl = await pages.add_job(JobState.completed, completed_at=old)  # not yet purged: still 410
    purged = await pages.add_job(JobState.completed, purged_at=utcnow())
    old_failure = await pages.add_job(JobState.failed, completed_at=old)
    for job in (past_ttl, purged, old_failure):
        response = await page(pages, job)
        assert response.status_code == 410, job.state
        assert response.headers["content-type"].startswith("text/html")
        assert "expired" in response.text and f"{ttl} days" in response.text
        assert (await pages.client.get(f"/p/{job.public_id}.json")).status_code == 410
        assert (await pages.client.get(f"/p/{job.public_id}/events")).status_code == 410
    fresh = await pages.add_job(JobState.completed, completed_at=utcnow() - timedelta(days=ttl - 1))
    assert (await page(pages, fresh)).status_code == 200


async def test_json_fallback_etag_and_retry_after(shared_pages: Stack) -> None:
    pages = shared_pages
    job = await pages.add_job(JobState.pending)
    url = f"/p/{job.public_id}.json"
    first = await pages.client.get(url)
    assert first.status_code == 200
    assert first.json()["status"] == "pending"
    tag = first.headers["etag"]
    assert first.headers["retry-after"] == "2"
    again = await pages.client.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag and again.headers["retry-after"] == "2"
    # the job moves on: the old tag no longer matches
    await _complete(pages, job)
    changed = await pages.client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    body = changed.json()
    assert body["status"] == "completed" and body["result_url"] and body["download_url"]
    assert "retry-after" not in changed.headers  # final: nothing more to wait for
    assert changed.headers["etag"] != tag
    still = await pages.client.get(url, headers={"If-None-Match": changed.headers["etag"]})
    assert still.status_code == 304


async def _complete(env: Stack, job: Job) -> None:
    key = f"results/{job.id}.png"
    await env.runtime.storage.put_bytes(key, striped_png(), "image/png")
    async with env.db.session() as session:
        fresh = await session.get(Job, job.id)
        assert fresh is not None
        fresh.state = JobState.completed
        fresh.result_key = key
        fresh.completed_at = fresh.updated_at = utcnow()


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_sse_pushes_each_change_and_closes_when_final(shared_pages: Stack) -> None:
    pages = shared_pages
    job = await pages.add_job(JobState.pending)
    events: list[dict[str, Any]] = []
    async with pages.client.stream("GET", f"/p/{job.public_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"].startswith("no-cache")
        reader = asyncio.create_task(read_events(response, events))
        await wait_for(lambda: len(events) == 1)
        assert events[0]["event"] == "state" and events[0]["data"]["status"] == "pending"

        async with pages.db.session() as session:
            fresh = await session.get(Job, job.id)
            assert fresh is not None
            fresh.state, fresh.updated_at = JobState.submitting, utcnow()
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await pages.runtime.bus.publish(JOB_CHANNEL_PREFIX + job.public_id, {"job_id": job.id, "status": "processing"})
        await wait_for(lambda: len(events) == 2)
        assert events[1]["data"]["status"] == "processing"
        assert events[1]["at"] - sent < 1.0

        await _complete(pages, job)
        sent = loop.time()
        await pages.runtime.bus.publish(JOB_CHANNEL_PREFIX + job.public_id, {"job_id": job.id, "status": "completed"})
        await asyncio.wait_for(reader, 5)  # the server ends the stream after the final state
    assert [e["data"]["status"] for e in events] == ["pending", "processing", "completed"]
    assert events[2]["at"] - sent < 1.0
    assert events[2]["data"]["result_url"]


async def test_sse_for_a_finished_job_sends_once_and_ends(shared_pages: Stack) -> None:
    pages = shared_pages
    job = await pages.add_job(JobState.failed)
    events: list[dict[str, Any]] = []
    async with pages.client.stream("GET", f"/p/{job.public_id}/events") as response:
        await asyncio.wait_for(read_events(response, events), 5)
    assert [e["data"]["status"] for e in events] == ["failed"]


async def test_qr_codes_encode_the_page_url(shared_pages: Stack) -> None:
    pages = shared_pages
    job = await pages.add_job(JobState.pending)
    expected = f"{pages.settings.public_base_url}/p/{job.public_id}"
    png = await pages.client.get(f"/p/{job.public_id}/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert [r.text for r in results] == [expected]
    svg = await pages.client.get(f"/p/{job.public_id}/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<svg") and "<title>" in svg.text
    # the 202 answer of the API points at it
    accepted = await pages.client.post(
        "/v1/jobs",
        headers={"Authorization": f"Bearer {pages.kiosk_token}"},
        files={"image": ("p.png", striped_png((320, 240)), "image/png")},
        data={"style": "pb_a"},
    )
    assert accepted.status_code == 202, accepted.text
    qr = await pages.client.get(accepted.json()["qr_url"])
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.content)))
    assert decoded[0].text == accepted.json()["page_url"]
    assert (await pages.client.get(accepted.json()["page_url"])).status_code == 200


async def test_static_assets_are_versioned_and_cached(shared_pages: Stack) -> None:
    pages = shared_pages
    job = await pages.add_job(JobState.pending)
    html = (await page(pages, job)).text
    start = html.index("/pages-static/guest.js?v=")
    url = html[start : html.index('"', start)]
    response = await pages.client.get(url)
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert "EventSource" in response.text
    css = html[html.index("/pages-static/pages.css") : html.index('"', html.index("/pages-static/pages.css"))]
    assert (await pages.client.get(css)).status_code == 200
