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
    assert seen["c"].schedules_file == (Path("x.yaml"),)


def test_manager_takes_several_schedules_files(monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr("corral.cli.servers._serve", lambda module, config: seen.update(c=config))
    args = ["manager", "--schedules", "a.json,b.json", "--schedules", "c.json"]
    result = CliRunner().invoke(main.build(), args)
    assert result.exit_code == 0, result.output
    assert seen["c"].schedules_file == (Path("a.json"), Path("b.json"), Path("c.json"))
    assert seen["c"].schedules_autostart is True
    result = CliRunner().invoke(main.build(), ["manager", "--no-schedules-autostart"])
    assert seen["c"].schedules_file == () and seen["c"].schedules_autostart is False
