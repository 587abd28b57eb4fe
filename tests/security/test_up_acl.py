"""``corral up`` says it is open on loopback; ``corral up --acl`` writes the management
token to <data-dir>/token (0600) and the CLI just works with it."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_up import Up, corral

# /metrics off: their fixed default ports collide with any other `corral up` on the machine.
NO_METRICS = ("--manager-metrics-listen=", "--worker-metrics-listen=", "--gateway-metrics-listen=")


@pytest.fixture
def up_acl(tmp_path: Path) -> Iterator[Up]:
    running = Up(tmp_path, "--acl", *NO_METRICS)
    yield running
    if running.popen.poll() is None:
        running.kill()
        running.popen.wait(10)


async def test_up_acl_writes_the_token_and_the_cli_uses_it(up_acl: Up, tmp_path: Path) -> None:
    await up_acl.wait_up()
    assert "ACLs on" in up_acl.out.read_text()
    token = tmp_path / ".corral" / "token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    secret = token.read_text().strip()
    assert secret.startswith("corral_")
    assert secret not in up_acl.logs()  # never printed, only written
    ran = corral("run", "--name", "hi", "--wait", "--", "echo", "hi", env=up_acl.env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    listed = corral("task", "ls", env=up_acl.env, cwd=tmp_path)
    assert listed.returncode == 0 and "hi" in listed.stdout
    # Elsewhere (no token file, no CORRAL_TOKEN) the same command is refused.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = corral("task", "ls", env=up_acl.env, cwd=elsewhere)
    assert refused.returncode == 1 and "missing token" in refused.stderr
    up_acl.popen.send_signal(signal.SIGINT)
    assert up_acl.popen.wait(30) == 0


async def test_the_readme_s_three_commands_give_mtls_and_acls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = corral(
        "tls", "init", "--dir", "certs", "--hosts", "localhost", env={**os.environ}, cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    certs = tmp_path / "certs"
    monkeypatch.setenv("CORRAL_TLS_CERT", str(certs / "server.pem"))
    monkeypatch.setenv("CORRAL_TLS_KEY", str(certs / "server-key.pem"))
    monkeypatch.setenv("CORRAL_TLS_CA", str(certs / "ca.pem"))
    up = Up(tmp_path, "--acl", *NO_METRICS)
    try:
        await up.wait_up()
        assert "mutual TLS, ACLs on" in up.out.read_text()
        ran = corral("run", "--name", "hi", "--wait", "--", "echo", "hi", env=up.env, cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        logs = corral("logs", "hi", env=up.env, cwd=tmp_path)  # manager -> worker over mTLS
        assert logs.returncode == 0 and "hi" in logs.stdout, logs.stderr
        plain = {k: v for k, v in up.env.items() if not k.startswith("CORRAL_TLS_")}
        refused = corral("task", "ls", env=plain, cwd=tmp_path)
        assert refused.returncode == 1 and "cannot reach the manager" in refused.stderr
        up.popen.send_signal(signal.SIGINT)
        assert up.popen.wait(30) == 0
    finally:
        if up.popen.poll() is None:
            up.kill()
            up.popen.wait(10)


async def test_up_without_acl_says_it_is_open(tmp_path: Path) -> None:
    up = Up(tmp_path, *NO_METRICS)
    try:
        await up.wait_up()
        assert "OPEN: no TLS, no ACLs" in up.out.read_text()
        up.popen.send_signal(signal.SIGINT)
        assert up.popen.wait(30) == 0
    finally:
        if up.popen.poll() is None:
            up.kill()
            up.popen.wait(10)
