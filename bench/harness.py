"""Runs the cases, each in its own process, then writes one JSON file and prints one table.

A case runs in a child process (``python -m bench --case MODULE``) so that a
hang, a crash or a leaked server costs that case only: the harness kills the
child's whole process group at the case's time limit and records why. A case
that cannot run records ``"error"`` instead of figures, never made-up numbers.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Case:
    name: str
    module: str
    quick_limit_s: float
    full_limit_s: float


# Per-case limits; a quick run also stops starting cases past QUICK_BUDGET_S, and
# shortens the last ones' limits to what is left, so `make bench` ends within 10 minutes.
# (Typical quick run: about 4 minutes on 2 cores.)
CASES: tuple[Case, ...] = (
    Case("floor", "bench.floor", 40, 180),
    Case("dispatch", "bench.dispatch", 150, 600),
    Case("latency", "bench.latency", 90, 240),
    Case("process", "bench.process", 40, 120),
    Case("failover", "bench.failover", 60, 300),
    Case("heartbeats", "bench.heartbeats", 120, 300),
    Case("store", "bench.store", 90, 300),
    Case("gateway", "bench.gateway", 40, 120),
    Case("security", "bench.security", 90, 400),
    Case("peers", "bench.peers", 180, 1200),
    Case("docker", "bench.docker_case", 60, 180),
    Case("ha", "bench.ha", 90, 300),
)
QUICK_BUDGET_S = 570.0
MIN_LIMIT_S = 20.0

KEYS = ("name", "params", "figures", "peer_figures", "ratios", "goal", "met")


def clean(value: Any) -> Any:
    """JSON has no NaN or infinity: a figure that could not be measured is null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def normalized(name: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """A case result with every key present, in the order readers expect."""
    out: dict[str, Any] = {
        "name": result.get("name") or name,
        "params": dict(result.get("params") or {}),
        "figures": dict(result.get("figures") or {}),
        "peer_figures": dict(result.get("peer_figures") or {}),
        "ratios": dict(result.get("ratios") or {}),
        "goal": str(result.get("goal") or ""),
        "met": result.get("met"),
    }
    for key, value in result.items():
        if key not in out:
            out[key] = value
    if out.get("error"):
        out["met"] = None
    return clean(out)  # type: ignore[no-any-return]


def versions() -> dict[str, str]:
    import grpc

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": version("protobuf"),
        "corral": version("corral"),
    }


def report(
    cases: Sequence[Mapping[str, Any]], *, quick: bool | None, command: str
) -> dict[str, Any]:
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "quick": quick,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "versions": versions(),
        "cases": [normalized(str(c.get("name", "?")), c) for c in cases],
    }


def write_json(data: Mapping[str, Any], path: Path) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(clean(data), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def _lines(figures: Mapping[str, Any]) -> str:
    return "\n".join(f"{k} {_number(v)}" for k, v in figures.items())


def _form(quick: Any) -> str:
    return {True: "quick", False: "full"}.get(quick, "one case")


def table(data: Mapping[str, Any]) -> Table:
    t = Table(
        title=f"Corral benchmarks ({_form(data.get('quick'))}, "
        f"{data.get('cpu_count')} cpus, grpcio {data.get('versions', {}).get('grpcio')})",
        show_lines=True,
    )
    for column in ("case", "figures", "peers", "ratios", "goal", "met"):
        t.add_column(column, overflow="fold")
    for case in data["cases"]:
        if case.get("error"):
            figures = f"[red]error:[/red] {case['error']}"
        else:
            figures = _lines(case["figures"])
        met = {True: "[green]met[/green]", False: "[red]missed[/red]"}.get(case["met"], "—")
        t.add_row(
            case["name"],
            figures,
            _lines(case["peer_figures"]),
            _lines(case["ratios"]),
            case["goal"],
            met,
        )
    return t


def print_table(data: Mapping[str, Any], console: Console | None = None) -> None:
    (console or Console(width=160)).print(table(data))


# --- running one case in this process (the child side) ---


def run_case_here(module_name: str, *, quick: bool) -> dict[str, Any]:
    """Import and run one case; any failure becomes an honest error record."""
    names = {case.module: case.name for case in CASES}
    name = names.get(module_name, module_name.rsplit(".", 1)[-1])
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        return {"name": name, "error": f"cannot import {module_name}: {err}"}
    try:
        result = asyncio.run(module.run(quick))
    except Exception as err:
        traceback.print_exc()
        return {"name": name, "error": f"{type(err).__name__}: {err}"}
    return dict(result)


def case_main(module_name: str, *, quick: bool, out: Path) -> int:
    result = run_case_here(module_name, quick=quick)
    write_json(result, out)
    return 0


# --- running every case (the parent side) ---


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def run_case_child(
    case: Case, *, quick: bool, console: Console, limit: float | None = None
) -> dict[str, Any]:
    if limit is None:
        limit = case.quick_limit_s if quick else case.full_limit_s
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        out = Path(tmp) / "result.json"
        log = Path(tmp) / "stderr.log"
        argv = [sys.executable, "-m", "bench", "--case", case.module, "--out", str(out)]
        if not quick:
            argv.append("--full")
        started = time.monotonic()
        with log.open("w") as err:
            # Its own session, so the whole tree (manager, workers, peers) dies together.
            child = subprocess.Popen(argv, stdout=err, stderr=err, start_new_session=True)
            try:
                child.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                _kill_group(child)
                return {"name": case.name, "error": f"timed out after {limit:.0f} s"}
            finally:
                _kill_group(child)  # whatever the case left behind
        elapsed = time.monotonic() - started
        console.print(f"[dim]{case.name}: {elapsed:.1f} s[/dim]")
        if out.exists():
            result = json.loads(out.read_text())
            result.setdefault("params", {})
            return dict(result)
        return {
            "name": case.name,
            "error": f"exited {child.returncode} without a result: {_tail(log.read_text())}",
        }


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    child.wait()


def run_all(
    *, quick: bool, only: Sequence[str] = (), out: Path = RESULTS / "latest.json"
) -> dict[str, Any]:
    console = Console(width=160)
    results = []
    started = time.monotonic()
    for case in CASES:
        if only and case.name not in only:
            continue
        limit = case.quick_limit_s if quick else case.full_limit_s
        if quick:
            left = QUICK_BUDGET_S - (time.monotonic() - started)
            if left < MIN_LIMIT_S:
                results.append(
                    {"name": case.name, "error": "not run: the quick run's time budget was spent"}
                )
                continue
            limit = min(limit, left)
        console.print(f"[bold]running {case.name}[/bold]")
        # The machine may be shared: its load before each case tells how noisy a figure is.
        load_before = round(os.getloadavg()[0], 2)
        result = run_case_child(case, quick=quick, console=console, limit=limit)
        result["load_average_1m_before"] = load_before
        result.setdefault("name", case.name)
        results.append(result)
        # Written after every case so an interrupted run still leaves what it measured.
        command = "python -m bench" + ("" if quick else " --full")
        data = report(results, quick=quick, command=command)
        write_json(data, out)
    print_table(data, console)
    console.print(f"wrote {out}")
    return data


def standalone(result: Mapping[str, Any]) -> None:
    """Print one case run alone and keep its JSON beside latest.json (as ``<name>.json``)."""
    name = str(result.get("name", "case"))
    command = " ".join(["python -m", f"bench.{Path(sys.argv[0]).stem}", *sys.argv[1:]])
    data = report([result], quick=None, command=command)
    write_json(data, RESULTS / f"{name}.json")
    print_table(data)
