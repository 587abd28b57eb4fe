"""corral: the shared library users import (``corral.Client``, the domain model, errors).

``Client`` is loaded lazily so that importing ``corral.model`` does not pull in
grpc channels and stubs for code (the scheduler, runtimes) that never dials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.client import Client

__all__ = ["Client"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from corral.client import Client

        return Client
    raise AttributeError(f"module 'corral' has no attribute {name!r}")
