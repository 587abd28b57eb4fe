"""What importing a piece of Corral loads: the boundaries import-linter checks statically,
checked here at run time in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _loaded_after(code: str) -> set[str]:
    program = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    # Unmeasured: `make test` measures Python subprocesses, and coverage loads sqlite3.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", program],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_domain_modules_load_neither_grpc_nor_protobuf() -> None:
    loaded = _loaded_after(
        "import corral.errors, corral.model, corral.validation, corral.jobs, "
        "corral.environments, corral.schedules, corral.schedule_validation"
    )
    assert not {m for m in loaded if m == "grpc" or m.startswith(("grpc.", "google.protobuf"))}


def test_building_the_cli_loads_no_server_but_their_configs() -> None:
    loaded = _loaded_after("from corral.cli import main\nmain.build()")
    servers = {m for m in loaded if m.split(".")[0] in ("manager", "worker", "gateway")}
    assert servers == {"manager", "manager.config", "worker", "worker.config"}
    assert not loaded & {"sqlite3", "docker", "kubernetes", "starlette", "uvicorn"}
