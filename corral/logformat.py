"""How every Corral server writes its log: ``--log-format json|text``.

``text`` is for people at a terminal (the default there); ``json`` is one
object per line for log shippers (the default when stderr is not a
terminal, as under systemd, Docker or Kubernetes). Both carry the fields
that tie a line to the rest of the system when the code knows them: the
task id, the node id, the attempt's generation (passed as ``extra=``) and
the trace id of the current OpenTelemetry span, so a log line can be found
from a trace and the other way round.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from corral import tracing
from corral.errors import ValidationError

FORMATS = ("json", "text")
# ``extra=`` keys worth showing; anything else a caller passes goes to json only.
KNOWN_FIELDS = ("task_id", "node_id", "generation", "trace_id")
# Attributes every LogRecord has: not "extra" fields.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def default_format() -> str:
    return "text" if sys.stderr.isatty() else "json"


def check_format(value: str, field: str = "log_format") -> str:
    """The format to use: ``value``, or the default for this stderr when empty."""
    if not value:
        return default_format()
    if value not in FORMATS:
        raise ValidationError(field, f"must be json or text, got {value!r}")
    return value


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
    if "trace_id" not in out and (trace_id := tracing.current_trace_id()):
        out["trace_id"] = trace_id
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the known fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...`` with the extra fields at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        ordered = [k for k in KNOWN_FIELDS if k in fields] + sorted(
            k for k in fields if k not in KNOWN_FIELDS
        )
        tail = " ".join(f"{k}={fields[k]}" for k in ordered)
        head, newline, rest = text.partition("\n")  # a traceback stays below the line
        return f"{head} {tail}{newline}{rest}"


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, as
    ``logging.lastResort`` does: a handler that kept the stream it was built with
    kept writing to a closed one once a caller (a test's ``CliRunner``, an embedding
    program) swapped stderr back, and every record became a "Logging error"."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass  # StreamHandler.__init__ sets it; the property always answers sys.stderr


def configure(fmt: str, *, level: int = logging.INFO) -> None:
    """Send the root logger to stderr in ``fmt`` (``json``/``text``; empty = the default)."""
    chosen = check_format(fmt)
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
