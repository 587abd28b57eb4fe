from pathlib import Path

from typer.testing import CliRunner

from corral.cli import main, up


def test_up_passes_only_given_flags_and_bare_booleans() -> None:
    flags = up._given(
        strategy="spread",
        jobs_image=None,
        tenant_namespaces=True,
        schedules_file=Path("s.yaml"),
        docker_network=None,
    )
    assert flags == ["--strategy", "spread", "--tenant-namespaces", "--schedules-file", "s.yaml"]
    assert up._given(tenant_namespaces=False) == []


def test_manager_accepts_the_schedules_alias(monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr("corral.cli.servers._serve", lambda module, config: seen.update(c=config))
    result = CliRunner().invoke(main.build(), ["manager", "--schedules", "x.yaml"])
    assert result.exit_code == 0, result.output
    assert seen["c"].schedules_file == Path("x.yaml")
