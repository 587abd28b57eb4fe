"""/metrics on the manager, the worker and the gateway, after real work went through."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
from observe_stack import sample, stack
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from corral import metrics
from corral.errors import ValidationError
from corral.model import TaskSpec, TaskState


async def test_each_server_counts_what_happened(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        task = await s.client.submit(TaskSpec(name="hello", command=("echo", "hello")))
        done = await s.client.wait(task.id, timeout=30)
        assert done.status.state is TaskState.COMPLETED
        # One REST request so the gateway has something to show.
        assert (await s.http.get(f"/v1/tasks/{task.id}")).status_code == 200
        assert (await s.http.get("/v1/tasks/nope")).status_code == 404

        m = await s.scrape(s.manager.metrics_port)
        assert sample(m, "corral_tasks_submitted_total") == 1
        assert sample(m, "corral_tasks_placed_total") == 1
        assert sample(m, "corral_tasks_completed_total") == 1
        assert sample(m, "corral_tasks_failed_total") == 0
        assert sample(m, "corral_tasks_lost_total") == 0
        assert sample(m, "corral_placement_latency_seconds_count") == 1
        assert sample(m, "corral_tasks", state="COMPLETED") == 1
        assert sample(m, "corral_tasks", state="PENDING") == 0
        assert sample(m, "corral_nodes", status="READY") == 1
        assert sample(m, "corral_open_streams", kind="worker") == 1
        assert sample(m, "corral_store_commit_seconds_count") >= 3  # submit, place, run, end
        assert sample(m, "corral_store_batch_rows_sum") >= 3
        node_id = str(s.worker.node_id)
        assert sample(m, "corral_node_heartbeat_age_seconds", node_id=node_id, node="w1") < 2
        assert sample(m, "corral_node_heartbeat_lateness_seconds", node_id=node_id, node="w1") < 2
        assert sample(m, "corral_node_capacity", node_id=node_id, node="w1", resource="cpu") > 0

        w = await s.scrape(s.worker.metrics_port)
        attempts = "corral_worker_attempts_total"
        assert sample(w, attempts, runtime="process", state="RUNNING") == 1
        assert sample(w, attempts, runtime="process", state="COMPLETED") == 1
        assert sample(w, "corral_worker_start_seconds_count", runtime="process", outcome="started")
        assert sample(w, "corral_worker_log_bytes") == len(b"hello\n")
        assert sample(w, "corral_worker_attempts_running", runtime="process") == 0

        g = await s.scrape(s.gateway.metrics_port)
        seconds = "corral_http_request_duration_seconds_count"
        assert sample(g, seconds, method="GET", route="/v1/tasks/{id}", status="200") == 1
        assert sample(g, seconds, method="GET", route="/v1/tasks/{id}", status="404") == 1


async def test_pending_tasks_by_reason_and_a_probe_counted(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        nowhere = TaskSpec(name="nowhere", command=("true",), constraints={"zone": "mars"})
        await s.client.submit(nowhere)
        # A placement pass explains it; the event says when.
        async for event in s.client.watch_events(1, kinds=("task.",)):
            if event.task is not None and event.task.status.message.startswith("no node fits"):
                break
        m = await s.scrape(s.manager.metrics_port)
        assert sample(m, "corral_tasks_pending", reason="no_fit") == 1
        assert sample(m, "corral_tasks", state="PENDING") == 1


async def test_a_running_attempt_is_counted_by_runtime(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        task = await s.client.submit(TaskSpec(name="sleeper", command=("sleep", "30")))
        await s.client.wait(task.id, running=True, timeout=30)
        w = await s.scrape(s.worker.metrics_port)
        assert sample(w, "corral_worker_attempts_running", runtime="process") == 1
        await s.client.stop_task(task.id)
        stopped = await s.client.wait(task.id, timeout=30)
        assert stopped.status.state is TaskState.STOPPED


async def test_the_endpoint_answers_only_metrics() -> None:
    registry = CollectorRegistry()
    Counter("corral_things", "Things.", registry=registry).inc(3)
    server = await metrics.serve("127.0.0.1:0", registry)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            body = (await http.get("/metrics")).text
            assert "corral_things_total 3.0" in body
            assert (await http.get("/other")).status_code == 404
            assert (await http.post("/metrics")).status_code == 405
            # A client that connects and says nothing does not stop the next one.
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            assert (await http.get("/metrics")).status_code == 200
            writer.close()
    finally:
        await server.stop()


async def test_metrics_are_off_without_a_listen_address() -> None:
    assert await metrics.maybe_serve("", CollectorRegistry()) is None


@pytest.mark.parametrize("listen", ["nope", "host:", "127.0.0.1:99999", ":x"])
def test_a_bad_listen_address_names_the_field(listen: str) -> None:
    with pytest.raises(ValidationError) as err:
        metrics.split_listen(listen, "manager_metrics_listen")
    assert err.value.field == "manager_metrics_listen"


SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": (),
    "unknown": (),
}
DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "corral-dashboard.json"


async def test_the_grafana_dashboard_plots_only_metrics_that_exist(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        task = await s.client.submit(TaskSpec(name="hello", command=("echo", "hello")))
        await s.client.wait(task.id, timeout=30)
        exposed: set[str] = set()
        for port in (s.manager.metrics_port, s.worker.metrics_port, s.gateway.metrics_port):
            reply = await s.http.get(f"http://127.0.0.1:{port}/metrics")
            for family in text_string_to_metric_families(reply.text):
                exposed |= {family.name, *(f"{family.name}{x}" for x in SUFFIXES[family.type])}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    used = {name for expr in exprs for name in re.findall(r"\bcorral_[a-z_]+", expr)}
    assert len(used) >= 20
    assert used <= exposed, sorted(used - exposed)
