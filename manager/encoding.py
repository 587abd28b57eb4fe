"""The manager's stored forms: specs, statuses and nodes as protobuf bytes.

This is the ``manager.store.Codec`` every store backend uses, and the one
module of the manager besides the servicers and sessions that touches wire
types: a backend stores bytes and never imports ``corral.v1``. A spec's bytes
come from the manager's ``SpecCache`` when its message is there (usually the
very one the client sent), so a submitted spec is converted at most once.
"""

from __future__ import annotations

import dataclasses

from corral import convert
from corral.convert.statuswire import status_bytes
from corral.errors import FailedPrecondition
from corral.model import Node, TaskSpec, TaskStatus
from corral.v1 import types_pb2
from manager.sealing import Sealer
from manager.wirecache import SpecCache


def spec_cache() -> SpecCache[types_pb2.TaskSpec]:
    """A manager's cache of spec messages (one per manager instance)."""
    return SpecCache(convert.spec_to)


class ProtoCodec:
    """``sealer`` encrypts ``secret_env`` at rest (``manager.sealing``): a stored spec
    holds ``sealed_secret_env``, never the values."""

    def __init__(self, specs: SpecCache[types_pb2.TaskSpec], sealer: Sealer | None = None) -> None:
        self.specs = specs
        self.sealer = sealer

    def encode_spec(self, spec: TaskSpec) -> bytes:
        # Read-only on the cache: a store encodes many specs it never sends.
        message = self.specs.peek(spec)
        if spec.secret_env:
            # Rare, so the copy is affordable: the cached message never holds secrets.
            sealed = types_pb2.TaskSpec()
            sealed.CopyFrom(message)
            sealed.ClearField("secret_env")
            sealed.sealed_secret_env = self._sealer().seal(spec.secret_env)
            return sealed.SerializeToString()
        return message.SerializeToString()

    def decode_spec(self, blob: bytes) -> TaskSpec:
        message = types_pb2.TaskSpec.FromString(blob)
        spec = convert.spec_from(message)
        if message.sealed_secret_env:
            opened = self._sealer().unseal(message.sealed_secret_env)
            spec = dataclasses.replace(spec, secret_env=opened)
        return spec

    def spec_has_dependencies(self, blob: bytes) -> bool:
        # The parse is upb's, in C: a tenth of a full ``decode_spec``.
        return len(types_pb2.TaskSpec.FromString(blob).depends_on) > 0

    def _sealer(self) -> Sealer:
        if self.sealer is None:
            raise FailedPrecondition("secret_env needs a manager with a secret key")
        return self.sealer

    def encode_status(self, status: TaskStatus) -> bytes:
        return status_bytes(status)

    def decode_status(self, blob: bytes) -> TaskStatus:
        return convert.status_from(types_pb2.TaskStatus.FromString(blob))

    def encode_node(self, node: Node) -> bytes:
        return convert.node_to(node).SerializeToString()

    def decode_node(self, blob: bytes) -> Node:
        return convert.node_from(types_pb2.Node.FromString(blob))
