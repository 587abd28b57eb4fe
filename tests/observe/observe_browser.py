"""Chromium driven by Playwright for the UI tests: fixtures and the steps every test shares.

Debian's ``/usr/bin/chromium``, headless, on an empty profile of its own.
Without Chromium (or Playwright) the tests skip, unless ``CI`` is set: then
they fail, so a CI machine cannot pass them by lacking a browser.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from observe_stack import Stack

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000


def _require_browser() -> Any:
    missing = ""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing = "the playwright package is not installed"
    if not missing and not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need a browser in CI: {missing}")
        pytest.skip(missing)
    return async_playwright


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CORRAL_UI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots: {folder}")
    return folder


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    async_playwright = _require_browser()
    async with async_playwright() as p:
        # Its own empty profile: nothing from another run (tokens, cache) leaks in.
        context = await p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 800},
        )
        try:
            yield context
        finally:
            await context.close()


async def open_ui(context: Any, s: Stack) -> Any:
    page = context.pages[0] if context.pages else await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.errors = errors
    await page.goto(f"http://127.0.0.1:{s.gateway.port}/ui/")
    await page.wait_for_selector("[data-testid=live].on", timeout=WAIT_MS)
    # Set once: a reload would lose it, so it proves the page updated in place.
    await page.evaluate("window.__corralNoReload = true")
    return page


async def still_same_page(page: Any) -> None:
    """No reload and no script error happened; then the page closes (its streams end)."""
    assert await page.evaluate("window.__corralNoReload === true"), "the page was reloaded"
    assert page.errors == [], page.errors
    await page.close()
