"""A real headless Chromium (Debian's /usr/bin/chromium through Playwright's Python API) for the page tests.

`launch()` starts one browser with a fake camera; `skip_without_chromium` marks a module to skip cleanly where
no Chromium is installed (`make browser` installs it). Screenshots go to test-output/; `publish` copies one into
docs/screenshots/ (the README and docs show them), so a run of the browser tests refreshes the docs' pictures.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path("test-output")
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]

skip_without_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None and not CHROMIUM.exists(),
    reason="no Chromium at /usr/bin/chromium (`make browser` installs Debian's chromium)",
)


@asynccontextmanager
async def launch() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield instance
        finally:
            await instance.close()


def screenshot_path(name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT / name


def publish(name: str) -> Path:
    """Copy test-output/`name` into docs/screenshots/ (what the docs show is what the test saw)."""
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = DOCS_SCREENSHOTS / name
    shutil.copyfile(screenshot_path(name), target)
    return target
