"""The handlers of a replica's current term behind one fixed gRPC server.

A gRPC server's services are fixed once it starts, but a replica's servicers
change with every term it leads (each term has a fresh core). The server holds
one ``Switchboard``; a term's servicers register into a ``Recorder``, and the
switchboard answers every call with whatever the current recorder holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

# The name the switchboard registers under (the others are announced by name).
MANAGER_SERVICE = "corral.v1.ManagerService"


class Recorder:
    """Stands in for the server when a term's servicers register: keeps their handlers."""

    def __init__(self) -> None:
        self.generic: list[grpc.GenericRpcHandler] = []
        self.methods: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        for name, handler in handlers.items():
            self.methods[f"/{service}/{name}"] = handler


class Switchboard(grpc.GenericRpcHandler):  # type: ignore[misc]
    """The server's handler for every service: whatever the current term registered."""

    def __init__(self) -> None:
        self.current = Recorder()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self.current.methods.get(details.method)
        if handler is not None:
            return handler
        for generic in self.current.generic:
            handler = generic.service(details)
            if handler is not None:
                return handler
        return None

    def add(self, server: grpc.aio.Server) -> str:
        server.add_generic_rpc_handlers((self,))
        return MANAGER_SERVICE
