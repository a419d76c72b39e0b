"""The pages in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright's Python API).

- guest page: open the page of a pending job, send the provider callback, see the photo appear without a reload;
- kiosk: fake camera, enter the token, take a photo, submit, see the QR code (decoded from the screenshot)
  and the finished photo.
Screenshots land in test-output/ (copies of good ones live in docs/screenshots/ for the README).
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from photobot.db.models import JobState
from photobot.links import gallery_url
from photobot.providers.simulator import SimConfig, Simulator
from tests.support.browser import launch, screenshot_path, skip_without_chromium
from tests.support.live import deliver_callback, held_callbacks, submit
from tests.support.stack import Stack, module_stack

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}

pytestmark = [pytest.mark.browser, skip_without_chromium]


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(callback_delay_s=0.3, long_side=512)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
async def live(sim: Simulator, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A served app with its dispatcher, talking to the simulator."""
    async with module_stack(
        sqlite_template, tmp_path_factory, run_dispatcher=True, kie_base_url=sim.url, kie_upload_base_url=sim.url
    ) as env:
        await env.set_event(
            title="Ana & Budi's Wedding",
            primary_color="#c2185b",
            footer_text="Bali · 22 November 2026 · Photos by Booth & Co",
        )
        yield env


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with launch() as instance:
        yield instance


async def test_guest_page_shows_the_photo_when_it_is_ready_without_a_reload(
    live: Stack, sim: Simulator, browser: Any
) -> None:
    async with held_callbacks(sim):  # the test sends the callback itself
        job = await submit(live.client, live.kiosk_token)
        context = await browser.new_context(**PHONE)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(job["page_url"])
        await page.wait_for_selector("#progress:not([hidden])")
        assert await page.locator("#done").is_hidden()
        await page.evaluate("window.__sameDocument = true")
        await page.screenshot(path=screenshot_path("guest-page-pending.png"))

        await deliver_callback(live.client, sim)

        await page.wait_for_selector("#done:not([hidden])", timeout=10_000)
        await page.wait_for_function("() => document.getElementById('photo').naturalWidth > 0", timeout=10_000)
        assert await page.evaluate("window.__sameDocument") is True  # no reload happened
        assert await page.locator("#progress").is_hidden()
        href = await page.get_attribute("#download", "href")
        assert href and "filename=photobot-" in href
        await page.wait_for_timeout(500)  # let the fade-in finish
        await page.screenshot(path=screenshot_path("guest-page.png"), full_page=True)
        assert errors == []
        await context.close()


async def test_kiosk_takes_a_photo_and_shows_the_qr_code(live: Stack, sim: Simulator, browser: Any) -> None:
    context = await browser.new_context(viewport={"width": 820, "height": 1180}, device_scale_factor=1)
    await context.grant_permissions(["camera"], origin=live.base_url)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{live.base_url}/kiosk")

    await page.fill("#token", "not-a-token")
    await page.click("#token-form button[type=submit]")
    await page.wait_for_selector("#setup-error:has-text('not accepted')")

    await page.fill("#token", live.kiosk_token)
    await page.click("#token-form button[type=submit]")
    await page.wait_for_selector("#capture:not([hidden])")
    assert await page.evaluate("localStorage.getItem('photobot.kioskToken')") == live.kiosk_token
    await page.click("label.style:has(input[value=pb_c])")
    assert await page.is_checked("input[name=style][value=pb_c]")
    await page.wait_for_function("() => document.getElementById('video').videoWidth > 0", timeout=10_000)
    await page.click("#snap")
    await page.wait_for_selector("#preview:not([hidden])")
    await page.click("details.contact summary")
    await page.fill("#email", "guest@example.com")
    await page.screenshot(path=screenshot_path("kiosk-capture.png"), full_page=True)
    await page.click("#submit")

    await page.wait_for_selector("#result:not([hidden])", timeout=10_000)
    await page.wait_for_function("() => document.getElementById('qr').naturalWidth > 0", timeout=10_000)
    page_url = await page.get_attribute("#page-link", "href")
    assert page_url and page_url.startswith(f"{live.base_url}/p/")
    qr_shot = await page.locator("#qr").screenshot()
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_shot)))
    assert [r.text for r in decoded] == [page_url]

    await page.wait_for_selector("#result-photo:not([hidden])", timeout=15_000)  # live status → finished photo
    await page.wait_for_function("() => document.getElementById('result-photo').naturalWidth > 0", timeout=10_000)
    assert "Ready" in await page.inner_text("#kiosk-status")
    await page.screenshot(path=screenshot_path("kiosk.png"), full_page=True)

    # the job went in through the public API with the chosen style and the guest's e-mail
    from photobot.db.models import Job

    async with live.db.session() as session:
        job = (await session.execute(Job.__table__.select().where(Job.public_id == page_url.rsplit("/", 1)[-1]))).one()
    assert job.style_id == "pb_c" and job.email == "guest@example.com"

    await page.click("#again")
    await page.wait_for_selector("#capture:not([hidden])")
    assert errors == []
    await context.close()


async def test_live_wall_adds_a_new_photo_in_the_browser(live: Stack, browser: Any) -> None:
    event_id = await live.new_event("Wall", title="Gala Night", primary_color="#0f766e")
    for color in ("#e76f51", "#2a9d8f", "#e9c46a", "#264653", "#f4a261"):
        await live.add_job(JobState.completed, event_id=event_id, color=color)
    url = gallery_url(live.base_url, live.settings.secret_keys(), event_id)
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    assert await page.locator("#grid li").count() == 5
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#grid img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    await page.screenshot(path=screenshot_path("gallery.png"), full_page=True)
    await page.goto(url + "&wall=1")
    await page.wait_for_timeout(300)  # the stream is open
    new = await live.add_job(JobState.completed, event_id=event_id, color="#d62828")
    await page.wait_for_selector(f"#grid li[data-id='{new.id}'] img", timeout=10_000)
    assert await page.locator("#grid li").first.get_attribute("data-id") == new.id
    assert await page.locator("#grid li").count() == 6
    assert errors == []
    await context.close()


async def test_without_server_sent_events_the_page_polls_the_json(live: Stack, sim: Simulator, browser: Any) -> None:
    # The page polls only while the job is unfinished: the test sends the callback itself once the page has polled.
    async with held_callbacks(sim):
        job = await submit(live.client, live.kiosk_token)
        context = await browser.new_context(**PHONE)
        await context.add_init_script("delete window.EventSource;")
        page = await context.new_page()
        seen: list[tuple[str, int]] = []
        page.on("response", lambda r: seen.append((r.url, r.status)))
        async with page.expect_response(lambda r: r.url.endswith(".json")) as first:
            await page.goto(job["page_url"])
        assert (await first.value).status == 200
        assert await page.locator("#done").is_hidden()

        await deliver_callback(live.client, sim)

        await page.wait_for_selector("#done:not([hidden])", timeout=15_000)
        await page.wait_for_function("() => document.getElementById('photo').naturalWidth > 0", timeout=10_000)
        polls = [status for url, status in seen if url.endswith(".json")]
        assert len(polls) >= 2 and polls[-1] == 200
        assert not [url for url, _ in seen if url.endswith("/events")]
        await context.close()


async def test_live_wall_drops_a_hidden_photo_and_adds_an_approved_one_without_a_reload(
    live: Stack, browser: Any
) -> None:
    event_id = await live.new_event("Moderated wall", title="Gala Night", moderation="approve")
    shown = await live.add_job(JobState.completed, event_id=event_id, color="#2a9d8f")
    waiting = await live.add_job(JobState.completed, event_id=event_id, color="#e76f51")
    for job in (shown,):
        answer = await live.client.post(f"/v1/admin/jobs/{job.id}/approve", headers=live.admin)
        assert answer.status_code == 200, answer.text
    url = gallery_url(live.base_url, live.settings.secret_keys(), event_id) + "&wall=1"
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    assert await page.locator("#grid li").count() == 1  # the unapproved photo is not on the wall
    await page.evaluate("window.__sameDocument = true")
    await page.wait_for_timeout(300)  # the stream is open

    approved = await live.client.post(f"/v1/admin/jobs/{waiting.id}/approve", headers=live.admin)
    assert approved.status_code == 200
    await page.wait_for_selector(f"#grid li[data-id='{waiting.id}'] img", timeout=10_000)
    assert await page.locator("#grid li").first.get_attribute("data-id") == waiting.id

    hidden = await live.client.post(f"/v1/admin/jobs/{shown.id}/hide", headers=live.admin)
    assert hidden.status_code == 200
    await page.wait_for_selector(f"#grid li[data-id='{shown.id}']", state="detached", timeout=10_000)
    assert await page.locator("#grid li").count() == 1
    await live.client.post(f"/v1/admin/jobs/{waiting.id}/hide", headers=live.admin)
    await page.wait_for_selector("#empty:not([hidden])", timeout=10_000)  # the wall says it is empty again
    assert await page.evaluate("window.__sameDocument") is True  # no reload happened
    assert errors == []
    await context.close()


async def test_kiosk_asks_for_consent_when_the_event_requires_it(live: Stack, browser: Any) -> None:
    from photobot.db.models import Job
    from tests.support.api import new_event, new_token

    event_id = await new_event(live, credits=3)
    wording = "I agree that Booth & Co turn my photo into art and keep it for 7 days."
    await live.set_event(event_id, consent_required=True, consent_text=wording)
    _, kiosk_token = await new_token(live, "event", event_id=event_id)
    context = await browser.new_context(viewport={"width": 820, "height": 1180}, device_scale_factor=1)
    await context.grant_permissions(["camera"], origin=live.base_url)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{live.base_url}/kiosk")
    await page.evaluate(f"localStorage.setItem('photobot.kioskToken', {json.dumps(kiosk_token)})")
    await page.reload()
    await page.wait_for_selector("#capture:not([hidden])")
    await page.wait_for_selector("#consent-box:not([hidden])")
    assert await page.inner_text("#consent-text") == wording
    assert not await page.is_checked("#consent")
    await page.wait_for_function("() => document.getElementById('video').videoWidth > 0", timeout=10_000)
    await page.click("#snap")
    await page.wait_for_selector("#preview:not([hidden])")

    await page.click("#submit")  # not ticked: the kiosk says so and sends nothing
    await page.wait_for_selector("#capture-error:has-text('agree')")
    assert await page.locator("#result").is_hidden()
    async with live.db.session() as session:
        assert not (await session.execute(Job.__table__.select().where(Job.event_id == event_id))).all()
    await page.screenshot(path=screenshot_path("kiosk-consent.png"), full_page=True)

    await page.check("#consent")
    await page.click("#submit")
    await page.wait_for_selector("#result:not([hidden])", timeout=10_000)
    async with live.db.session() as session:
        rows = (await session.execute(Job.__table__.select().where(Job.event_id == event_id))).all()
    assert len(rows) == 1 and rows[0].consent_at is not None
    await page.click("#again")
    await page.wait_for_selector("#capture:not([hidden])")
    assert not await page.is_checked("#consent")  # the next guest ticks it again

    # an event without the rule shows no box
    await page.click("#forget")
    await page.fill("#token", live.kiosk_token)
    await page.click("#token-form button[type=submit]")
    await page.wait_for_selector("#capture:not([hidden])")
    await page.wait_for_timeout(200)
    assert await page.locator("#consent-box").is_hidden()
    assert errors == []
    await context.close()
