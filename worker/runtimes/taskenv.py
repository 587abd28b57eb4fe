"""What a process task starts with: a clean environment, and a user that is not root.

A task never inherits the worker's environment: the worker may hold its own
token (``CORRAL_TOKEN``), cloud credentials or a kubeconfig path, and a task
is someone else's code. It gets a fixed ``PATH``, ``HOME`` (the task user's),
``LANG``, Corral's own ``CORRAL_*`` variables, then its ``env`` and its
``secret_env``.

A worker running as root starts process tasks as ``--task-user`` (default
``nobody``): a task that could run as root could read the worker's data dir,
its key and every other task's output. An unprivileged worker runs tasks as
itself (it cannot do otherwise). Only argv drops privileges, through
util-linux ``setpriv`` (uid, gid, no supplementary groups, no new
privileges): the launcher around it stays the worker's and still records the
exit status in the worker's data dir, which the task user cannot enter.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from corral.errors import ValidationError
from corral.model import TaskSpec
from worker.runtimes.base import StartError

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LANG = "C.UTF-8"


@dataclass(frozen=True)
class TaskUser:
    """Who a task runs as: ``uid``/``gid`` None means as the worker itself."""

    uid: int | None
    gid: int | None
    home: str


def task_user(name: str) -> TaskUser:
    """``name`` when the worker is root (and ``name`` is set), else the worker's own user."""
    if os.geteuid() != 0 or not name:
        return TaskUser(None, None, _own_home())
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ValidationError("task_user", f"no user named {name!r} on this host") from None
    return TaskUser(entry.pw_uid, entry.pw_gid, entry.pw_dir)


def as_user(user: TaskUser, argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed so that it runs as ``user`` (unchanged when running as ourselves)."""
    if user.uid is None:
        return list(argv)
    setpriv = shutil.which("setpriv", path=PATH)
    if setpriv is None:
        raise StartError(
            "setpriv (util-linux) is needed to run tasks as --task-user on a root worker;"
            " install it, or run the worker as an unprivileged user"
        )
    return [
        setpriv,
        f"--reuid={user.uid}",
        f"--regid={user.gid}",
        "--clear-groups",
        "--no-new-privs",
        "--",
        *argv,
    ]


def _own_home() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return "/"


def environment(spec: TaskSpec, user: TaskUser, corral: dict[str, str]) -> dict[str, str]:
    """The whole environment of a task: fixed basics, ``corral`` (CORRAL_*), env, secret_env."""
    return {
        "PATH": PATH,
        "HOME": user.home,
        "LANG": LANG,
        **corral,
        **spec.env,
        **spec.secret_env,
    }
