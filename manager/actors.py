"""Who caused a change: the actor every event records (``Event.actor``).

A call's actor is its token (``token:<name>``, set by ``manager.acl``); on a
worker's stream it is the node (``node:<id>``, set once its Hello is
admitted), for the updates it reports. Work the manager does on its own
(placement passes, node liveness) has none. Read where events are made, so
no signature between the servicers and the core has to carry it.
"""

from __future__ import annotations

import contextvars

from manager.acl import caller

_actor: contextvars.ContextVar[str] = contextvars.ContextVar("actor", default="")


def current() -> str:
    explicit = _actor.get()
    if explicit:
        return explicit
    name = caller().name
    return f"token:{name}" if name else ""


def act_as(actor: str) -> None:
    """The actor of everything the current task (and the tasks it starts) changes."""
    _actor.set(actor)
