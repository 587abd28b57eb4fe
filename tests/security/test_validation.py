# ruff: noqa: RUF001, RUF003 -- the look-alike characters are the point
"""Full-string validation: a valid value plus a trailing newline, a NUL or a look-alike
letter is refused by every validator (``$`` used to match before a final newline)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from corral import validation
from corral.cli.options import parse_size
from corral.errors import ValidationError
from corral.schedulefiles import parse_duration
from manager.environments.templates import memory_bytes

# "а" below is CYRILLIC SMALL LETTER A, "٣" an ARABIC-INDIC DIGIT THREE, "ｓ" fullwidth.
HOSTILE = ("\n", "\x00", "\r\n", "\t")

CASES: list[tuple[str, Callable[[str], Any], str, list[str]]] = [
    ("name", validation.check_name, "web-1", ["wеb-1", "web-١"]),
    ("task id", validation.check_task_id, "abc-123", ["аbc-123", "abc-١٢٣"]),
    ("image", validation.check_image, "nginx:1.27", ["nginx:1.٢٧", "ngіnx:1.27"]),
    ("env key", lambda v: validation.check_env({v: "x"}, "env"), "API_KEY", ["АPI_KEY"]),
    ("label key", lambda v: validation.check_labels({v: "x"}, "labels"), "app", ["аpp"]),
    (
        "url",
        lambda v: validation.check_url(v, "url"),
        "http://example.test/x",
        ["http://exаmple.test/x"],
    ),
    ("size", lambda v: parse_size(v, "memory"), "512Mi", ["٥١٢Mi"]),
]


@pytest.mark.parametrize(("what", "check", "good", "lookalikes"), CASES, ids=[c[0] for c in CASES])
def test_valid_values_pass_and_hostile_variants_are_refused(
    what: str, check: Callable[[str], Any], good: str, lookalikes: list[str]
) -> None:
    check(good)
    for bad in [good + s for s in HOSTILE] + [s + good for s in HOSTILE] + lookalikes:
        with pytest.raises(ValidationError):
            check(bad)
            pytest.fail(f"{what}: {bad!r} was accepted")


def test_a_trailing_newline_in_a_repl_id_or_log_dir_name_is_refused() -> None:
    for value in ("idnl\n", "envnl\n"):
        with pytest.raises(ValidationError, match="RFC 1123"):
            validation.check_name(value, "repl_id")


@pytest.mark.parametrize("bad", ["1Gi\n", "1G\x00", "١Gi"])
def test_environment_quantities_are_full_strings(bad: str) -> None:
    assert memory_bytes("1Gi") == 1 << 30
    with pytest.raises(ValueError, match="not a memory quantity"):
        memory_bytes(bad)


# Config-file durations are stripped of surrounding blanks (YAML), but nothing inside passes.
@pytest.mark.parametrize("bad", ["00:05:00\x00", "٠٠:05:00", "٥m", "5m\x00"])
def test_schedule_durations_are_full_strings(bad: str) -> None:
    assert parse_duration("00:05:00", "every") == 300.0
    with pytest.raises(ValidationError):
        parse_duration(bad, "every")
