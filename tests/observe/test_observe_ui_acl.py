"""The web UI with ACLs on: it asks for a token once and shows what the role may do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from observe_browser import WAIT_MS, browser, shots  # noqa: F401  (fixtures)

from corral.client import Client
from corral.model import TaskSpec
from gateway.server import serve as serve_gateway
from manager.acl.tokens import Role
from manager.config import ManagerConfig
from manager.server import serve as serve_manager


async def test_a_token_is_asked_once_and_the_role_decides_the_buttons(
    tmp_path: Path,
    browser: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    config = ManagerConfig(listen="127.0.0.1:0", data_dir=tmp_path / "manager", acl=True)
    manager = await serve_manager(config, extension_modules=["manager.jobs"])
    gateway = await serve_gateway(f"127.0.0.1:{manager.port}", "127.0.0.1:0")
    try:
        assert manager.tokens is not None
        _, reader = manager.tokens.create("ui-reader", Role.READER, "")
        _, submitter = manager.tokens.create("ui-submitter", Role.SUBMITTER, "")
        async with Client(f"127.0.0.1:{manager.port}", token=submitter) as client:
            # No worker: it waits PENDING, which is all this test needs.
            task = await client.submit(TaskSpec(name="waiting", command=("true",)))

        page = context_page = browser.pages[0] if browser.pages else await browser.new_page()
        await context_page.goto(f"http://127.0.0.1:{gateway.port}/ui/")
        dialog = page.locator("[data-testid=token-dialog]")
        await dialog.wait_for(state="visible", timeout=WAIT_MS)
        await page.fill("[data-testid=token-input]", "not-a-token")
        await page.click("[data-testid=token-submit]")
        await page.locator("#token-error", has_text="refused").wait_for(timeout=WAIT_MS)
        await page.fill("[data-testid=token-input]", reader)
        await page.click("[data-testid=token-submit]")
        await page.wait_for_selector("[data-testid=live].on", timeout=WAIT_MS)
        await page.locator("tr[data-task=waiting]").wait_for(timeout=WAIT_MS)
        # A reader sees everything and may change nothing.
        assert await page.locator("a[data-nav=submit]").is_hidden()
        await page.click("tr[data-task=waiting]")
        await page.locator("[data-testid=explain-summary]").wait_for(timeout=WAIT_MS)
        assert await page.locator("[data-testid=stop-task]").count() == 0
        await page.click("a[data-nav=jobs]")
        assert await page.locator("[data-testid=job-form]").is_hidden()
        await page.screenshot(path=str(shots / "10-acl-reader.png"), full_page=True)

        # Asked once: a reload keeps the token.
        await page.reload()
        await page.wait_for_selector("[data-testid=live].on", timeout=WAIT_MS)
        assert await dialog.is_hidden()

        # Another role: sign out, paste the submitter's token, and Stop appears.
        await page.click("#signout")
        await dialog.wait_for(state="visible", timeout=WAIT_MS)
        await page.fill("[data-testid=token-input]", submitter)
        await page.click("[data-testid=token-submit]")
        await page.wait_for_selector("[data-testid=live].on", timeout=WAIT_MS)
        assert await page.locator("a[data-nav=submit]").is_visible()
        await page.goto(f"http://127.0.0.1:{gateway.port}/ui/#/tasks/{task.id}")
        await page.click("[data-testid=stop-task]")
        state = page.locator("[data-testid=detail-state]")
        await state.filter(has_text="STOPPED").wait_for(timeout=WAIT_MS)
        await page.close()
    finally:
        await gateway.stop()
        await manager.stop()
