"""The kiosk and the live wall at the sizes they run at, in a real headless Chromium, with screenshots saved in
docs/screenshots/:

- kiosk on a 1280x800 landscape tablet and an 800x1280 portrait one: the submit control ("Make my photo") is
  inside the viewport without scrolling, the styles show their preview images, in the event's chosen order;
- a text-to-image style needs no photo: the kiosk submits it without one and the job completes;
- live wall at 1920x1080 with 1 to 100 photos: the tiles cover most of the wall area, none leaves the screen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from photobot.db.models import JobState
from photobot.links import gallery_url
from photobot.providers.simulator import SimConfig, Simulator
from photobot.services import styles as styles_svc
from photobot.services.styles import StyleIn, upsert_styles
from tests.support.browser import launch, publish, screenshot_path, skip_without_chromium
from tests.support.stack import Stack, module_stack

PREVIEWS = Path(styles_svc.__file__).parent.parent / "data" / "previews"

pytestmark = [pytest.mark.browser, skip_without_chromium]

LANDSCAPE = {"width": 1280, "height": 800}
PORTRAIT = {"width": 800, "height": 1280}
WALL = {"width": 1920, "height": 1080}
ORDER = ["pb_c", "pb_a", "watercolor", "pop_art", "pb_d", "fantasy", "suit_b", "jhonw_c", "retro_80s", "pb_b"]


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(callback_delay_s=0.3, long_side=512)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
async def live(sim: Simulator, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with module_stack(
        sqlite_template, tmp_path_factory, run_dispatcher=True, kie_base_url=sim.url, kie_upload_base_url=sim.url
    ) as env:
        await env.set_event(title="Ana & Budi's Wedding", primary_color="#c2185b")
        yield env


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with launch() as instance:
        yield instance


async def _kiosk(live: Stack, browser: Any, viewport: dict[str, int]) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(viewport=viewport, device_scale_factor=1, has_touch=True)
    await context.grant_permissions(["camera"], origin=live.base_url)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{live.base_url}/kiosk")
    await page.fill("#token", live.kiosk_token)
    await page.click("#token-form button[type=submit]")
    await page.wait_for_selector("#capture:not([hidden])")
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#style-list img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    return context, page, errors


async def _inside(page: Any, selector: str, viewport: dict[str, int]) -> dict[str, float]:
    box = await page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not rendered"
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= viewport["width"], (selector, box, viewport)
    assert box["y"] + box["height"] <= viewport["height"], (selector, box, viewport)
    return box  # type: ignore[no-any-return]


@pytest.mark.parametrize(("viewport", "name"), [(LANDSCAPE, "kiosk-1280x800.png"), (PORTRAIT, "kiosk-800x1280.png")])
async def test_make_my_photo_is_visible_without_scrolling(
    live: Stack, browser: Any, viewport: dict[str, int], name: str
) -> None:
    # an event that also asks for consent: the consent box must fit on the same screen as everything else
    wording = "I agree that my photo is sent to an AI image service and kept for 30 days."
    patched = await live.client.patch(
        f"/v1/admin/events/{live.event_id}",
        json={"styles": ORDER, "consent_required": True, "consent_text": wording},
        headers=live.admin,
    )
    assert patched.status_code == 200, patched.text
    try:
        context, page, errors = await _kiosk(live, browser, viewport)
        await page.wait_for_selector("#consent-box:not([hidden])")

        # the event's styles, in its order, each with its preview image from the catalogue
        shown = await page.eval_on_selector_all("#style-list input[name=style]", "(els) => els.map((e) => e.value)")
        assert shown == ORDER
        previews = await page.eval_on_selector_all(
            "#style-list img", "(els) => els.map((i) => new URL(i.src).pathname)"
        )
        assert previews == [f"/media/styles/{s}/preview.jpg" for s in ORDER]
        first_tile = await _inside(page, "label.style:has(input[value=pb_c]) img", viewport)
        assert first_tile["width"] >= 80 and first_tile["height"] >= 80  # a picture you can see, not an icon

        await page.wait_for_function("() => document.getElementById('video').videoWidth > 0", timeout=10_000)
        await _inside(page, "#snap", viewport)
        await page.click("#snap")
        await page.wait_for_selector("#preview:not([hidden])")
        await page.click("label.style:has(input[value=pop_art])")
        assert await page.evaluate("[window.scrollX, window.scrollY]") == [0, 0]
        submit = await _inside(page, "#submit", viewport)
        assert submit["height"] >= 48 and await page.is_enabled("#submit")
        assert await page.inner_text("#submit") == "Make my photo"
        camera = await _inside(page, ".camera", viewport)
        assert camera["height"] >= viewport["height"] * 0.3  # the guest still sees themselves, large
        await _inside(page, "#consent-box", viewport)
        await page.check("#consent")
        assert await page.evaluate("[window.scrollX, window.scrollY]") == [0, 0]
        await page.screenshot(path=screenshot_path(name))
        publish(name)

        # submitted from where it stands: the QR code comes up, also without scrolling
        await page.click("#submit")
        await page.wait_for_selector("#result:not([hidden])", timeout=10_000)
        await page.wait_for_function("() => document.getElementById('qr').naturalWidth > 0", timeout=10_000)
        await _inside(page, "#qr", viewport)
        await page.wait_for_selector("#result-photo:not([hidden])", timeout=15_000)
        await page.wait_for_function("() => document.getElementById('result-photo').naturalWidth > 0")
        await _inside(page, "#again", viewport)
        await page.screenshot(path=screenshot_path(name.replace("kiosk-", "kiosk-result-")))
        publish(name.replace("kiosk-", "kiosk-result-"))
        assert errors == []
        await context.close()
    finally:  # the module's other tests use the same event, without consent
        reset = await live.client.patch(
            f"/v1/admin/events/{live.event_id}", json={"consent_required": False}, headers=live.admin
        )
        assert reset.status_code == 200, reset.text


async def test_a_text_to_image_style_is_made_without_a_photo(live: Stack, browser: Any) -> None:
    async with live.db.session() as session:
        castle = StyleIn(id="castle", name="Fairy-tale castle", prompt="A castle at dawn", model="google/nano-banana")
        await upsert_styles(session, [castle])
    patched = await live.client.patch(
        f"/v1/admin/events/{live.event_id}", json={"styles": ["pb_a", "castle"]}, headers=live.admin
    )
    assert patched.status_code == 200
    context, page, errors = await _kiosk(live, browser, LANDSCAPE)
    assert await page.is_disabled("#submit")  # pb_a is selected first: it needs a photo
    await page.click("label.style:has(input[value=castle])")
    assert await page.is_enabled("#submit")  # no photo needed for this one
    assert await page.is_visible("#no-photo")
    await page.click("#submit")
    await page.wait_for_selector("#result-photo:not([hidden])", timeout=15_000)
    page_url = await page.get_attribute("#page-link", "href")
    assert page_url
    from photobot.db.models import Job

    async with live.db.session() as session:
        job = (await session.execute(Job.__table__.select().where(Job.public_id == page_url.rsplit("/", 1)[-1]))).one()
    assert job.style_id == "castle" and job.input_key is None and job.state == "completed"
    assert errors == []
    await context.close()


@pytest.mark.parametrize("count", [1, 2, 3, 5, 10, 24, 60, 100])
async def test_live_wall_fills_the_screen(live: Stack, browser: Any, count: int) -> None:
    event_id = await live.new_event(f"Wall {count}", title="Gala Night", primary_color="#0f766e")
    previews = sorted(PREVIEWS.glob("*.jpg"))  # cartoon guests stand in for the photos
    for i in range(count):
        job = await live.add_job(JobState.completed, event_id=event_id)
        assert job.result_key is not None
        await live.runtime.storage.put_bytes(job.result_key, previews[i % len(previews)].read_bytes(), "image/jpeg")
    url = gallery_url(live.base_url, live.settings.secret_keys(), event_id) + "&wall=1"
    context = await browser.new_context(viewport=WALL, device_scale_factor=1)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#grid img')].every((i) => i.complete && i.naturalWidth > 0)",
        timeout=20_000,
    )
    tiles = await page.eval_on_selector_all(
        "#grid li",
        "(els) => els.map((e) => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })",
    )
    assert len(tiles) == count
    for x, y, w, h in tiles:
        assert x >= 0 and y >= 0 and x + w <= WALL["width"] + 0.5 and y + h <= WALL["height"] + 0.5, (x, y, w, h)
    assert await page.evaluate("document.documentElement.scrollHeight") <= WALL["height"]  # nothing below
    covered = sum(w * h for _, _, w, h in tiles) / (WALL["width"] * WALL["height"])
    assert covered >= 0.6, f"{count} photos cover {covered:.0%} of the wall"
    shown = await page.eval_on_selector_all(  # the photos themselves (contained in their tiles), not the fill
        "#grid img",
        """(els) => els.map((i) => { const r = i.getBoundingClientRect();
            const s = Math.min(r.width / i.naturalWidth, r.height / i.naturalHeight);
            return i.naturalWidth * s * i.naturalHeight * s; })""",
    )
    print(f"wall {count}: tiles cover {covered:.1%}, photos {sum(shown) / (WALL['width'] * WALL['height']):.1%}")
    if count in (1, 10, 100):
        name = f"wall-{count}.jpg"
        await page.screenshot(path=screenshot_path(name), type="jpeg", quality=80)
        publish(name)
    assert errors == []
    await context.close()
