"""corral up hands the metrics and log flags to the right child."""

from __future__ import annotations

import socket

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


def run_up(monkeypatch, *args: str) -> tuple[up.UpSettings, str]:
    seen: list[up.UpSettings] = []

    async def supervise(settings: up.UpSettings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(up, "supervise", supervise)
    result = CliRunner().invoke(main.build(), ["up", *args])
    assert result.exit_code == 0, result.output
    return seen[0], result.output


def test_metrics_are_on_by_default_where_the_port_is_free(monkeypatch) -> None:
    monkeypatch.setattr(up, "_port_free", lambda listen: listen != up.DEFAULT_METRICS["worker"])
    s, output = run_up(monkeypatch, "--gateway-metrics-listen", "")
    assert s.manager_flags[-4:-2] == ("--metrics-listen", up.DEFAULT_METRICS["manager"])
    assert "--metrics-listen" not in s.worker_flags  # its default port is taken
    assert "--metrics-listen" not in s.gateway_flags  # '' is off
    assert f"{up.DEFAULT_METRICS['worker']} is in use" in output
    assert dict(s.metrics) == {
        "manager": up.DEFAULT_METRICS["manager"],
        "worker": "",
        "gateway": "",
    }


def test_a_taken_port_is_seen_as_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not up._port_free(f"127.0.0.1:{port}")
    assert up._port_free(f"127.0.0.1:{port}")
