"""hypothesis-generated messages against every unary and server-streaming RPC of the
manager's services (at least 2,000 cases): no UNKNOWN, no INTERNAL, and every
INVALID_ARGUMENT names its field in a ``BadRequest``.

Requests are built from the message descriptors: any subset of fields, strings
from empty to long, integers across their whole range, enum numbers the protos
do not define, nested messages, repeated fields and maps; one case in eight is
random bytes instead of a message. ``Connect`` (the worker protocol) is left
out: a fuzzed Hello would register a node whose address the manager later
dials, and tests send traffic only to addresses they own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from fleet import Figures, Fleet
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.v1 import environments_pb2, jobs_pb2, manager_pb2, schedules_pb2
from gateway.messages import INT_RANGES

SERVICES = [
    manager_pb2.DESCRIPTOR.services_by_name["ManagerService"],
    jobs_pb2.DESCRIPTOR.services_by_name["JobService"],
    schedules_pb2.DESCRIPTOR.services_by_name["ScheduleService"],
    environments_pb2.DESCRIPTOR.services_by_name["EnvironmentService"],
]
PER_METHOD = 80
CASES = 2000
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
_TEXT = st.one_of(
    st.just(""),
    st.text(max_size=12),
    st.sampled_from(["default", "a:b", "../x", "x" * 300, "running", "127.0.0.1:1"]),
)


def scalar(f: Any) -> st.SearchStrategy[Any]:
    kind = f.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _TEXT
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=16)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if kind == FieldDescriptor.TYPE_ENUM:
        defined = [v.number for v in f.enum_type.values]
        return st.one_of(st.sampled_from(defined), st.integers(-(2**31), 2**31 - 1))
    low, high = INT_RANGES[kind]
    return st.one_of(st.integers(low, high), st.sampled_from([0, 1, -1 if low < 0 else 2]))


def message(descriptor: Any, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Field name -> value for a subset of ``descriptor``'s fields."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in descriptor.fields:
        sub = f.message_type
        if sub is not None and sub.GetOptions().map_entry:
            key, value = sub.fields_by_name["key"], sub.fields_by_name["value"]
            if value.message_type is not None:
                continue
            fields[f.name] = st.dictionaries(scalar(key), scalar(value), max_size=3)
            continue
        if sub is not None:
            if depth >= 3 or sub.full_name.startswith("google.protobuf."):
                if sub.full_name == "google.protobuf.Duration":
                    one = st.builds(
                        _duration, st.integers(-(10**6), 10**10), st.integers(0, 10**9 - 1)
                    )
                else:
                    continue
            else:
                one = message(sub, depth + 1)
        else:
            one = scalar(f)
        fields[f.name] = st.lists(one, max_size=3) if f.is_repeated else one
    return st.fixed_dictionaries({}, optional=fields)


def _duration(seconds: int, nanos: int) -> dict[str, int]:
    return {"seconds": seconds, "nanos": nanos}


def build(values: dict[str, Any], cls: Any) -> Any:
    out = cls()
    fill(out, values)
    return out


def fill(target: Any, values: dict[str, Any]) -> None:
    for name, value in values.items():
        f = target.DESCRIPTOR.fields_by_name[name]
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            getattr(target, name).update(value)
        elif f.message_type is not None and f.is_repeated:
            for item in value:
                fill(getattr(target, name).add(), item)
        elif f.message_type is not None:
            sub = getattr(target, name)
            sub.SetInParent()
            fill(sub, value)
        elif f.is_repeated:
            getattr(target, name).extend(value)
        else:
            setattr(target, name, value)


class Tally:
    def __init__(self) -> None:
        self.cases = 0
        self.codes: dict[str, int] = {}
        self.bad: list[str] = []

    def record(self, method: str, err: grpc.RpcError | None) -> None:
        self.cases += 1
        code = grpc.StatusCode.OK if err is None else err.code()
        self.codes[code.name] = self.codes.get(code.name, 0) + 1
        if err is None:
            return
        if code in FORBIDDEN:
            self.bad.append(f"{method}: {code.name} {err.details()}")
        elif code is grpc.StatusCode.INVALID_ARGUMENT and not names_a_field(err):
            self.bad.append(f"{method}: INVALID_ARGUMENT without a field: {err.details()}")


def names_a_field(err: grpc.RpcError) -> bool:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return False
    for detail in status.details:
        violations = error_details_pb2.BadRequest()
        if detail.Unpack(violations) and violations.field_violations:
            return all(v.field for v in violations.field_violations)
    return False


def fuzz_method(channel: grpc.Channel, service: Any, method: Any, tally: Tally) -> None:
    path = f"/{service.full_name}/{method.name}"
    cls = _class_of(method.input_type)
    requests = st.one_of(
        message(method.input_type).map(lambda v: build(v, cls).SerializeToString()),
        st.binary(min_size=1, max_size=32),
    )
    if method.server_streaming:
        call: Any = channel.unary_stream(path, lambda b: b, lambda b: b)
    else:
        call = channel.unary_unary(path, lambda b: b, lambda b: b)

    @given(raw=requests)
    @settings(
        max_examples=PER_METHOD,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(raw: bytes) -> None:
        try:
            if method.server_streaming:
                for _ in call(raw, timeout=0.5):
                    break
            else:
                call(raw, timeout=10)
        except grpc.RpcError as err:
            if err.code() is grpc.StatusCode.DEADLINE_EXCEEDED and method.server_streaming:
                tally.record(path, None)  # a stream that is simply quiet
                return
            tally.record(path, err)
            return
        tally.record(path, None)

    run()


def _class_of(descriptor: Any) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


@pytest.mark.timeout(900)
def test_fuzzed_messages_never_get_unknown_or_internal(fleet: Fleet, figures: Figures) -> None:
    manager = fleet.start_manager()
    asyncio.run(fleet.ready(manager))
    tally = Tally()
    methods = 0
    with grpc.insecure_channel(fleet.manager_address) as channel:
        for service in SERVICES:
            for method in service.methods:
                if method.client_streaming:
                    continue
                methods += 1
                fuzz_method(channel, service, method, tally)
    codes = ", ".join(f"{k} {v}" for k, v in sorted(tally.codes.items()))
    figures.add("grpc fuzz: methods / cases", f"{methods} / {tally.cases}")
    figures.add("grpc fuzz: codes", codes)
    figures.add("grpc fuzz: UNKNOWN/INTERNAL or unnamed field", len(tally.bad))
    assert tally.bad == [], tally.bad[:10]
    assert manager.popen.poll() is None, "the manager died under fuzzing"
    assert tally.cases >= CASES, tally.cases
