"""``corral job run|ls|status|logs`` as a user runs them, against the fake
manager's real JobService (process runtime)."""

from __future__ import annotations

import asyncio
import json
import sys

from gateway_fakes import fake_manager

# Only the job commands: the other command modules land in parallel.
DRIVER = (
    "import typer, sys; from corral.cli import jobs; app = typer.Typer(); "
    "jobs.register(app); app(sys.argv[1:], prog_name='corral')"
)


async def corral(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DRIVER,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_job_commands() -> None:
    async with fake_manager() as (target, _):
        m = ("--manager", target)
        code, out, err = await corral("job", "run", 'python3 -c "import this"', "-f", *m)
        assert code == 0, err
        assert out.startswith("job ") and "The Zen of Python, by Tim Peters" in out
        name = out.split()[1]
        code, out, _ = await corral("job", "status", name, "-o", "json", *m)
        status = json.loads(out)["status"]
        assert status["succeeded"] == 1 and status["conditions"][0]["type"] == "Complete"
        code, out, _ = await corral("job", "status", name, *m)
        assert ["succeeded", "1"] in [line.split()[:2] for line in out.splitlines()]
        code, out, _ = await corral("job", "logs", name, "--tail", "1", *m)
        assert out == "Namespaces are one honking great idea -- let's do more of those!\n"
        code, out, err = await corral("job", "run", "exit 4", "--name", "broken", "-f", *m)
        assert code == 1
        code, out, _ = await corral("job", "ls", *m)
        assert code == 0 and name in out and "broken" in out and "failed" in out
        code, _, err = await corral("job", "run", "true", "--name", "Bad Name", *m)
        assert code == 1 and "invalid name" in err
        code, _, err = await corral("job", "logs", "missing", *m)
        assert code == 1 and "not found" in err
