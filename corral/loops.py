"""The event loop a Corral server process runs on.

uvloop when it is installed (it is a dependency on Linux and macOS): the
manager's hot path is mostly event-loop machinery — a callback per gRPC
completion, a future per stream write — and uvloop runs that machinery in C.
``bench.dispatch`` measured about 13% more placements per second with it
(see README, Performance). The worker runs on it too: its side of a start
(read the Assign, spawn, write RUNNING, reap, write the exit) is the same kind
of machinery; ``bench.process`` measured about 15% less worker CPU per task.
``CORRAL_EVENT_LOOP=asyncio`` keeps the standard
loop, e.g. to rule the loop out while chasing a bug.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from corral.errors import ValidationError

T = TypeVar("T")

CHOICES = ("uvloop", "asyncio")


def chosen() -> str:
    """``uvloop`` or ``asyncio``: what ``run`` will use here."""
    wanted = os.environ.get("CORRAL_EVENT_LOOP", "").strip().lower() or "uvloop"
    if wanted not in CHOICES:
        raise ValidationError(
            "CORRAL_EVENT_LOOP", f"must be one of {', '.join(CHOICES)}, not {wanted!r}"
        )
    if wanted == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:  # a platform without a wheel: the standard loop works the same
            return "asyncio"
    return wanted


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the chosen loop."""
    try:
        loop = chosen()
    except ValidationError:
        main.close()  # never started: no "coroutine was never awaited" at exit
        raise
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
