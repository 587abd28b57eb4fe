"""HTTP bindings read from the ``google.api.http`` annotations of the protos.

Nothing here names an RPC: every method of every service in the given proto
files that carries an ``http`` option (and its ``additional_bindings``)
becomes one ``Binding``. Adding an annotated RPC to a ``corral.v1`` proto adds
its route the next time the gateway starts, with no gateway change.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor
from google.protobuf.message import Message

# {field}, {field=*}, {field=**} or {field=pattern/*}; dots name nested fields.
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?:=([^}]*))?\}")
_VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Binding:
    """One HTTP route of one RPC."""

    http_method: str
    template: str  # as annotated, e.g. /v1/tasks/{id}:stop
    path: str  # the Starlette path, e.g. /v1/tasks/{id}:stop
    path_fields: dict[str, str]  # Starlette parameter -> dotted request field
    body: str  # "", "*" or a request field
    response_body: str  # "" or a response field
    rpc_path: str  # /corral.v1.ManagerService/SubmitTask
    method: MethodDescriptor
    request_type: type[Message]
    response_type: type[Message]
    ordinal: int = 0  # 0 for the main binding, 1.. for additional_bindings

    @property
    def streaming(self) -> bool:
        return bool(self.method.server_streaming)

    @property
    def operation_id(self) -> str:
        name = f"{self.method.containing_service.name}_{self.method.name}"
        return f"{name}_{self.ordinal}" if self.ordinal else name


def corral_files() -> list[FileDescriptor]:
    """Every ``corral.v1`` proto file, found by importing the generated modules."""
    import corral.v1

    files = []
    for info in pkgutil.iter_modules(corral.v1.__path__):
        if info.name.endswith("_pb2"):
            module: Any = importlib.import_module(f"corral.v1.{info.name}")
            files.append(module.DESCRIPTOR)
    return files


def bindings_of(files: Iterable[FileDescriptor]) -> list[Binding]:
    out: list[Binding] = []
    for file in files:
        for service in file.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if not options.HasExtension(annotations_pb2.http):
                    continue
                rule = options.Extensions[annotations_pb2.http]
                for ordinal, binding in enumerate(_bindings(method, rule)):
                    out.append(dataclasses.replace(binding, ordinal=ordinal))
    return out


def _bindings(method: MethodDescriptor, rule: http_pb2.HttpRule) -> Iterator[Binding]:
    pattern = rule.WhichOneof("pattern")
    if pattern in _VERBS:
        yield _binding(method, pattern.upper(), getattr(rule, pattern), rule)
    elif pattern == "custom":
        yield _binding(method, rule.custom.kind.upper(), rule.custom.path, rule)
    for extra in rule.additional_bindings:
        yield from _bindings(method, extra)


def _binding(
    method: MethodDescriptor, verb: str, template: str, rule: http_pb2.HttpRule
) -> Binding:
    fields: dict[str, str] = {}

    def variable(match: re.Match[str]) -> str:
        # Starlette parameters are identifiers: nested fields get '__' for '.'.
        param = match.group(1).replace(".", "__")
        fields[param] = match.group(1)
        multi = "**" in (match.group(2) or "") or "/" in (match.group(2) or "")
        return "{" + param + (":path}" if multi else "}")

    service = method.containing_service
    return Binding(
        http_method=verb,
        template=template,
        path=_VARIABLE.sub(variable, template),
        path_fields=fields,
        body=rule.body,
        response_body=rule.response_body,
        rpc_path=f"/{service.full_name}/{method.name}",
        method=method,
        request_type=message_factory.GetMessageClass(method.input_type),
        response_type=message_factory.GetMessageClass(method.output_type),
    )
