"""/docs in a real headless Chromium: Swagger UI (served from the installed package) renders every operation from
/openapi.json, with its schemas as readable models, and nothing is fetched from anywhere but this server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from photobot.db import Database
from tests.support.stack import StackFactory

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        shutil.which("chromium") is None and not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium"
    ),
]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_docs_render_offline(database: Database, ops_app: StackFactory, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    async with ops_app(database, run_dispatcher=False) as env:
        spec = (await env.client.get("/openapi.json")).json()
        expected = sum(len(item) for item in spec["paths"].values())
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = await browser.new_page()
                foreign: list[str] = []
                page.on("request", lambda r: None if r.url.startswith(env.base_url) else foreign.append(r.url))
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(f"{env.base_url}/docs")
                await page.wait_for_selector(".opblock-tag")
                for tag in await page.locator(".opblock-tag").all():  # operations are grouped, collapsed
                    if await tag.get_attribute("data-is-open") != "true":
                        await tag.click()
                await page.wait_for_selector(".opblock .opblock-summary-path")
                count = await page.locator(".opblock").count()
                retry = page.locator(".opblock", has_text="/v1/admin/jobs/{job_id}/retry").first
                await retry.locator(".opblock-summary").click()
                await retry.locator(".responses-wrapper").wait_for()
                await retry.get_by_text("Schema", exact=True).first.click()
                text = await page.inner_text("#swagger-ui")
                await page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
            finally:
                await browser.close()
    assert count == expected
    assert errors == [] and foreign == []
    assert "Retry a failed job" in text and "retry_of" in text  # the expanded operation shows its schema
