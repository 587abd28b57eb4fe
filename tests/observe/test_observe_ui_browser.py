"""The web UI in a real browser: Debian's Chromium driven by Playwright.

What a person would do: open /ui/, submit a task from the form and watch it
reach COMPLETED without reloading, read its logs, see why a task waits,
stop a running task, drain and undrain the node. Screenshots of each step go
to a folder the test prints (``CORRAL_UI_SCREENSHOTS`` chooses it).

Without Chromium (or Playwright) these tests skip, unless ``CI`` is set:
then they fail, so a CI machine cannot pass them by lacking a browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from observe_browser import WAIT_MS, browser, open_ui, shots, still_same_page
from observe_stack import stack

__all__ = ["browser", "shots"]  # fixtures, used by name


async def submit_form(page: Any, name: str, command: str, constraints: str = "") -> None:
    await page.click("a[data-nav=submit]")
    await page.fill("#f-name", name)
    await page.fill("#f-command", command)
    if constraints:
        await page.fill("#f-constraints", constraints)
    await page.click("[data-testid=submit-task]")


async def test_submit_watch_complete_and_read_logs(
    tmp_path: Path, browser: Any, shots: Path
) -> None:
    async with stack(tmp_path) as s:
        page = await open_ui(browser, s)
        await page.screenshot(path=str(shots / "01-tasks-empty.png"))
        await submit_form(
            page, "hello-ui", "sh -c 'echo hello from the browser; sleep 1; echo bye'"
        )
        # The detail page follows the task through the event stream: no reload.
        state = page.locator("[data-testid=detail-state]")
        await (
            state.filter(has_text="RUNNING")
            .or_(state.filter(has_text="COMPLETED"))
            .wait_for(timeout=WAIT_MS)
        )
        await state.filter(has_text="COMPLETED").wait_for(timeout=WAIT_MS)
        logs = page.locator("[data-testid=logs]")
        await logs.filter(has_text="bye").wait_for(timeout=WAIT_MS)
        assert (await logs.inner_text()).startswith("hello from the browser\nbye")
        attempts = page.locator("[data-testid=attempts]")
        await attempts.filter(has_text="COMPLETED").wait_for(timeout=WAIT_MS)
        await page.screenshot(path=str(shots / "02-task-completed.png"), full_page=True)

        # The list shows it too, filtered by state and found by search.
        await page.click("a[data-nav=tasks]")
        await page.click("[data-testid=state-filters] [data-state=COMPLETED]")
        await page.fill("[data-testid=task-search]", "hello-ui")
        row = page.locator("tr[data-task=hello-ui]")
        await row.locator("[data-testid=task-state]", has_text="COMPLETED").wait_for(
            timeout=WAIT_MS
        )
        await page.click("[data-testid=state-filters] [data-state=FAILED]")
        await row.wait_for(state="detached", timeout=WAIT_MS)
        await page.screenshot(path=str(shots / "03-tasks-list.png"), full_page=True)
        await still_same_page(page)


async def test_a_pending_task_shows_its_reasons(tmp_path: Path, browser: Any, shots: Path) -> None:
    async with stack(tmp_path, labels={"zone": "earth"}) as s:
        page = await open_ui(browser, s)
        await submit_form(page, "waits", "true", constraints="zone=mars")
        summary = page.locator("[data-testid=explain-summary]")
        await summary.filter(has_text="no node fits: 1 lacks label zone=mars").wait_for(
            timeout=WAIT_MS
        )
        reason = page.locator("tr[data-node=w1] [data-kind=constraint]")
        assert await reason.inner_text() == "needs zone=mars; has zone=earth"
        await page.screenshot(path=str(shots / "04-pending-reasons.png"), full_page=True)
        await still_same_page(page)


async def test_stop_a_running_task_and_drain_the_node(
    tmp_path: Path, browser: Any, shots: Path
) -> None:
    async with stack(tmp_path) as s:
        page = await open_ui(browser, s)
        await submit_form(page, "sleeper", "sleep 120")
        state = page.locator("[data-testid=detail-state]")
        await state.filter(has_text="RUNNING").wait_for(timeout=WAIT_MS)
        await page.click("[data-testid=stop-task]")
        await state.filter(has_text="STOPPED").wait_for(timeout=WAIT_MS)
        await page.locator("[data-testid=stop-task]").wait_for(state="detached", timeout=WAIT_MS)
        await page.screenshot(path=str(shots / "05-task-stopped.png"), full_page=True)

        await page.click("a[data-nav=nodes]")
        node = page.locator("tr[data-node=w1]")
        await node.locator("[data-testid=heartbeat]", has_text="ago").wait_for(timeout=WAIT_MS)
        await node.locator("[data-testid=drain]").click()
        await node.locator("[data-testid=node-status]", has_text="DRAINING").wait_for(
            timeout=WAIT_MS
        )
        await page.screenshot(path=str(shots / "06-node-draining.png"), full_page=True)
        await node.locator("[data-testid=undrain]").click()
        await node.locator("[data-testid=node-status]", has_text="READY").wait_for(timeout=WAIT_MS)
        assert (await s.client.list_nodes())[0].status.value == "ready"
        await still_same_page(page)


async def test_a_job_from_the_form(tmp_path: Path, browser: Any, shots: Path) -> None:
    async with stack(tmp_path) as s:
        page = await open_ui(browser, s)
        await page.click("a[data-nav=jobs]")
        await page.fill("#job-cmd", "echo job done")
        await page.click("[data-testid=job-form] button[type=submit]")
        await page.locator("[data-testid=detail-state]", has_text="COMPLETED").wait_for(
            timeout=WAIT_MS
        )
        await page.locator("[data-testid=logs]", has_text="job done").wait_for(timeout=WAIT_MS)
        await page.click("a[data-nav=jobs]")
        await page.locator("[data-testid=jobs] td", has_text="echo job done").wait_for(
            timeout=WAIT_MS
        )
        await page.screenshot(path=str(shots / "07-jobs.png"), full_page=True)
        await still_same_page(page)


async def test_schedules_show_runs_and_responses_and_environments_list(
    tmp_path: Path, browser: Any, shots: Path
) -> None:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"greeting": "hello from the endpoint"})

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    extensions = ("manager.jobs", "manager.schedules", "manager.environments")
    try:
        async with stack(tmp_path, runtimes=("process", "http"), extensions=extensions) as s:
            endpoint = {"name": "hello", "url": f"http://127.0.0.1:{port}/hello"}
            schedule = {"name": "ping", "interval": "3600s", "http": {"endpoints": [endpoint]}}
            assert (await s.http.post("/v1/schedules", json=schedule)).status_code == 200
            env = {"replId": "demo", "language": "python"}
            assert (await s.http.post("/v1/environments", json=env)).status_code == 200
            page = await open_ui(browser, s)
            await page.click("a[data-nav=schedules]")
            card = page.locator("[data-schedule=ping]")
            await card.locator("button", has_text="Run once").click()
            body = card.locator("[data-testid=run-body]")
            await body.first.wait_for(timeout=WAIT_MS)
            assert '"greeting": "hello from the endpoint"' in await body.first.inner_text()
            await page.screenshot(path=str(shots / "08-schedules.png"), full_page=True)
            await page.click("a[data-nav=environments]")
            row = page.locator("tr[data-env=demo]")
            await row.locator(".badge", has_text="RUNNING").wait_for(timeout=WAIT_MS)
            await page.screenshot(path=str(shots / "09-environments.png"), full_page=True)
            await still_same_page(page)
            assert (await s.http.delete("/v1/environments/demo")).status_code == 200
    finally:
        await runner.cleanup()


async def test_bad_input_in_the_form_names_the_field(tmp_path: Path, browser: Any) -> None:
    async with stack(tmp_path) as s:
        page = await open_ui(browser, s)
        error = page.locator("[data-testid=form-error]")
        await submit_form(page, "bad", "sh -c 'echo never")
        await error.filter(has_text="command: unclosed ' quote").wait_for(timeout=WAIT_MS)
        await page.fill("#f-command", "true")
        await page.fill("#f-env", "NOEQUALS")
        await page.click("[data-testid=submit-task]")
        await error.filter(has_text='env: "NOEQUALS" is not KEY=VALUE').wait_for(timeout=WAIT_MS)
        # What only the server knows comes back naming the field too.
        await page.fill("#f-env", "")
        await page.fill("#f-name", "Not_A_Label")
        await page.click("[data-testid=submit-task]")
        await error.filter(has_text="spec.name").wait_for(timeout=WAIT_MS)
        # The command line is split like a shell would, quotes and escapes included.
        line = r"""sh -c 'echo a  b' "x y" z\ w"""
        split = await page.evaluate("line => argv(line)", line)
        assert split == ["sh", "-c", "echo a  b", "x y", "z w"]
        assert await s.client.list_tasks() == []
        await still_same_page(page)
