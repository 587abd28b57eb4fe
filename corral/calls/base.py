"""What the feature-service mixins of ``corral.Client`` stand on: its unary call and
server stream with deadlines, retries and domain errors (``corral.client`` has them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any


class Calls:
    async def call(
        self,
        method: Callable[..., Any],
        request: Any,
        *,
        idempotent: bool = True,
        timeout: float | None = None,
    ) -> Any:
        raise NotImplementedError

    def stream(
        self, method: Callable[..., Any], request: Any, *, timeout: float | None = None
    ) -> AsyncIterator[Any]:
        raise NotImplementedError
