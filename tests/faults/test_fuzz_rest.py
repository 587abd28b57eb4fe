"""schemathesis against the gateway's own ``/openapi.json`` (at least 3,000 cases).

Every operation the document describes gets cases generated from its schema
(deterministically: ``derandomize``), sent to a real gateway in front of a
real manager. No case may get a 5xx, and every INVALID_ARGUMENT 400 of a canonical
route must name its field (a ``google.rpc.Status`` with a ``BadRequest`` violation).
Findings are collected, not raised, so one run reports them all.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import schemathesis
from fleet import Figures, Fleet, free_port
from hypothesis import HealthCheck, Phase, given, settings
from waiting import eventually

CASES = 3000
PER_OPERATION = 120


def wait_serving(url: str) -> None:
    async def answered() -> bool:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(url)).status_code == 200

    asyncio.run(
        eventually(answered, timeout=60, interval=0.1, what=url, ignoring=(httpx.HTTPError,))
    )


def invalid_argument(response: Any) -> bool:
    """A 400 for bad input (INVALID_ARGUMENT); FAILED_PRECONDITION is 400 too, with no field."""
    try:
        return bool(response.json().get("code") == 3)
    except (ValueError, AttributeError):
        return True


def names_a_field(response: Any) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    violations = [
        v
        for d in body.get("details", [])
        if isinstance(d, dict)
        for v in d.get("fieldViolations", [])
    ]
    return bool(violations) and all(v.get("field") for v in violations)


def streams(operation: Any) -> bool:
    """Streaming responses (SSE, NDJSON, followed logs) never end: gRPC fuzzing covers them."""
    responses = operation.definition.raw.get("responses", {})
    media = {m for r in responses.values() for m in (r.get("content") or {})}
    return bool(media & {"text/event-stream", "application/x-ndjson", "text/plain"})


class Findings:
    def __init__(self) -> None:
        self.sent = 0
        self.server_errors: list[str] = []
        self.unnamed: list[str] = []


def fuzz(operation: Any, base: str, findings: Findings) -> None:
    canonical = operation.path.startswith("/v1/")

    @given(case=operation.as_strategy())
    @settings(
        max_examples=PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base, timeout=15)
        findings.sent += 1
        what = f"{case.method} {case.formatted_path} -> {response.status_code}"
        if response.status_code >= 500:
            findings.server_errors.append(f"{what}: {response.text[:200]}")
        elif (
            response.status_code == 400
            and canonical
            and invalid_argument(response)
            and not names_a_field(response)
        ):
            findings.unnamed.append(f"{what}: {response.text[:200]}")

    run()


@pytest.mark.timeout(900)
def test_schemathesis_finds_no_5xx_and_every_400_names_its_field(
    fleet: Fleet, figures: Figures
) -> None:
    manager = fleet.start_manager()
    asyncio.run(fleet.ready(manager))
    port = free_port()
    fleet.start_gateway(port)
    base = f"http://127.0.0.1:{port}"
    wait_serving(f"{base}/openapi.json")
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    findings = Findings()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if streams(operation):
            continue
        operations += 1
        fuzz(operation, base, findings)
    sent, server_errors, unnamed = findings.sent, findings.server_errors, findings.unnamed
    figures.add("schemathesis: operations / cases", f"{operations} / {sent}")
    figures.add("schemathesis: 5xx / 400 without a field", f"{len(server_errors)} / {len(unnamed)}")
    assert server_errors == [], server_errors[:10]
    assert unnamed == [], unnamed[:10]
    assert sent >= CASES, sent
