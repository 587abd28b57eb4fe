"""corral up hands the metrics and log flags to the right child."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from corral.cli import main, up


def test_up_gives_each_child_its_metrics_address(monkeypatch) -> None:
    seen: list[up.UpSettings] = []

    async def supervise(settings: up.UpSettings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(up, "supervise", supervise)
    args = ["up", "--manager-metrics-listen", "127.0.0.1:9100"]
    args += ["--worker-metrics-listen", "127.0.0.1:9101", "--gateway-metrics-listen", ":9102"]
    args += ["--log-format", "json"]
    result = CliRunner().invoke(main.build(), args)
    assert result.exit_code == 0, result.output
    s = seen[0]
    assert s.manager_flags[-4:] == ("--metrics-listen", "127.0.0.1:9100", "--log-format", "json")
    assert s.worker_flags[-4:] == ("--metrics-listen", "127.0.0.1:9101", "--log-format", "json")
    assert s.gateway_flags == ("--metrics-listen", ":9102", "--log-format", "json")


def test_metrics_are_off_unless_asked_and_make_up_asks(monkeypatch) -> None:
    seen: list[up.UpSettings] = []

    async def supervise(settings: up.UpSettings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(up, "supervise", supervise)
    result = CliRunner().invoke(main.build(), ["up"])
    assert result.exit_code == 0, result.output
    s = seen[0]
    assert "--metrics-listen" not in (*s.manager_flags, *s.worker_flags, *s.gateway_flags)
    assert dict(s.metrics) == {"manager": "", "worker": "", "gateway": ""}
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    assert "--manager-metrics-listen 127.0.0.1:9180" in makefile
