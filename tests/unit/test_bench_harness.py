"""The bench harness's JSON writer and table on a made-up case result (no network, no timing)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console

from bench import figures, harness


def fake_case() -> dict[str, object]:
    return {
        "name": "dispatch",
        "params": {"workers": 10, "tasks": 100},
        "figures": {"placements_per_s": 1234.5, "running_p99_ms": math.nan},
        "ratios": {"of_fanout_floor": 0.5},
        "goal": ">= 20,000 placements/s",
        "met": False,
    }


def test_report_is_strict_json_with_every_key(tmp_path: Path) -> None:
    data = harness.report(
        [fake_case(), {"name": "docker", "error": "no engine"}], quick=True, command="x"
    )
    out = tmp_path / "latest.json"
    harness.write_json(data, out)
    loaded = json.loads(out.read_text())
    assert loaded["cpu_count"] >= 1
    assert set(loaded["versions"]) >= {"python", "grpcio", "corral"}
    dispatch, docker = loaded["cases"]
    assert set(harness.KEYS) <= set(dispatch)
    assert dispatch["figures"]["running_p99_ms"] is None  # NaN is not JSON
    assert dispatch["met"] is False
    assert docker["error"] == "no engine"
    assert docker["figures"] == {}
    assert docker["met"] is None


def test_table_shows_figures_errors_and_verdicts() -> None:
    data = harness.report(
        [fake_case(), {"name": "docker", "error": "no engine"}], quick=True, command="x"
    )
    console = Console(width=200, record=True)
    harness.print_table(data, console)
    text = console.export_text()
    assert "placements_per_s 1,234" in text
    assert "error: no engine" in text
    assert "missed" in text


def test_missing_case_module_is_an_honest_error() -> None:
    result = harness.run_case_here("bench.no_such_case", quick=True)
    assert "cannot import" in result["error"]


def test_percentiles_and_ratios() -> None:
    assert figures.percentile([3, 1, 2, 4], 50) == 2
    assert figures.percentile([1.0] * 99 + [100.0], 99) == 1.0
    assert math.isnan(figures.percentile([], 50))
    assert math.isnan(figures.ratio(1.0, 0.0))
    assert figures.latency_figures("x", [0.001, 0.002])["x_p50_ms"] == 1.0
