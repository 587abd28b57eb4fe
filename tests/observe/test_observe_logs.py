"""--log-format json|text: the fields that tie a line to a task, a node and a trace."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest
from observe_stack import stack
from typer.testing import CliRunner

from corral import logformat
from corral.cli import main
from corral.errors import ValidationError
from corral.model import TaskSpec


def record(**extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "worker.supervisor", "levelname": "WARNING"})
    rec.msg, rec.levelno = "attempt failed", logging.WARNING
    rec.__dict__.update(extra)
    return rec


def test_json_lines_carry_task_node_generation() -> None:
    line = logformat.JsonFormatter().format(
        record(task_id="t-1", node_id="n-1", generation=3, port=5)
    )
    data = json.loads(line)
    assert data["message"] == "attempt failed" and data["level"] == "warning"
    assert data["logger"] == "worker.supervisor" and data["time"].endswith("Z")
    assert (data["task_id"], data["node_id"], data["generation"], data["port"]) == (
        "t-1",
        "n-1",
        3,
        5,
    )


def test_text_lines_end_with_the_known_fields_first() -> None:
    text = logformat.TextFormatter().format(record(port=5, generation=2, task_id="t-1"))
    assert text.endswith(
        "WARNING worker.supervisor: attempt failed task_id=t-1 generation=2 port=5"
    )


def test_a_traceback_stays_below_the_fields() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        rec = record(task_id="t-1")
        rec.exc_info = sys.exc_info()
    text = logformat.TextFormatter().format(rec)
    first, rest = text.split("\n", 1)
    assert first.endswith("attempt failed task_id=t-1") and "RuntimeError: boom" in rest
    data = json.loads(logformat.JsonFormatter().format(rec))
    assert "RuntimeError: boom" in data["exception"]


def test_the_default_is_text_on_a_terminal_only(monkeypatch) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert logformat.check_format("") == "text"
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert logformat.check_format("") == "json"
    assert logformat.check_format("text") == "text"
    with pytest.raises(ValidationError) as err:
        logformat.check_format("xml")
    assert err.value.field == "log_format"


def test_logs_follow_stderr_when_a_caller_swaps_it(monkeypatch, capsys) -> None:
    """A CLI run inside CliRunner configures logging on the runner's stream, which is
    closed afterwards; later records must reach the stderr of the moment."""
    root = logging.getLogger()
    kept = list(root.handlers), root.level
    try:
        swapped = io.StringIO()
        monkeypatch.setattr(sys, "stderr", swapped)
        logformat.configure("text")
        logging.getLogger("corral.test").info("while swapped")
        swapped.close()
        monkeypatch.undo()
        logging.getLogger("corral.test").info("after the swap")
    finally:
        root.handlers[:], root.level = kept[0], kept[1]
    err = capsys.readouterr().err
    assert "after the swap" in err
    assert "Logging error" not in err


@pytest.mark.parametrize("program", ["manager", "worker", "gateway"])
def test_every_server_refuses_a_bad_log_format_naming_it(program: str) -> None:
    result = CliRunner().invoke(main.build(), [program, "--log-format", "xml"])
    assert result.exit_code != 0
    assert "log_format" in result.output and "xml" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("program", ["manager", "worker", "gateway"])
def test_every_server_refuses_a_bad_metrics_address_naming_it(program: str) -> None:
    result = CliRunner().invoke(main.build(), [program, "--metrics-listen", "nowhere"])
    assert result.exit_code != 0
    assert "metrics_listen" in result.output and "Traceback" not in result.output


def test_up_refuses_a_bad_metrics_address_naming_it() -> None:
    result = CliRunner().invoke(main.build(), ["up", "--worker-metrics-listen", "x"])
    assert result.exit_code != 0
    assert "worker_metrics_listen" in result.output and "Traceback" not in result.output


def test_servers_take_the_flags(monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr("corral.cli.servers._serve", lambda module, config: seen.update(c=config))
    monkeypatch.setattr("corral.logformat.configure", lambda fmt: seen.update(f=fmt))
    args = ["worker", "--metrics-listen", "127.0.0.1:9101", "--log-format", "json"]
    result = CliRunner().invoke(main.build(), args)
    assert result.exit_code == 0, result.output
    assert seen["c"].metrics_listen == "127.0.0.1:9101" and seen["f"] == "json"


async def test_a_failed_attempt_is_logged_with_its_task_node_and_generation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with stack(tmp_path) as s:
        task = await s.client.submit(TaskSpec(name="fails", command=("sh", "-c", "exit 4")))
        done = await s.client.wait(task.id, timeout=30)
    lines = [r for r in caplog.records if r.getMessage() == "attempt failed: exit code 4"]
    assert len(lines) == 1
    fields = vars(lines[0])
    assert (fields["task_id"], fields["generation"], fields["node_id"]) == (
        task.id,
        1,
        done.status.node_id,
    )
    connected = [r for r in caplog.records if r.getMessage().startswith("worker w1 connected")]
    assert connected and vars(connected[0])["node_id"] == done.status.node_id
