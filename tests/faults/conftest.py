"""The fault suite (``make test-faults``): fixtures, and the figures it prints at the end.

Each test records what it measured with ``figures.add(...)``; the terminal
summary prints them all, so a CI log shows duplicate samples, replacement
times, heal time and fuzz counts without reading test output.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet import FIGURES, Figures, Fleet, free_port


@pytest.fixture
def figures() -> Figures:
    return Figures()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(tmp_path, f"127.0.0.1:{free_port()}")
    yield f
    f.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault suite figures")
    width = max(len(name) for name, _ in FIGURES)
    for name, value in FIGURES:
        terminalreporter.write_line(f"{name:<{width}}  {value}")
