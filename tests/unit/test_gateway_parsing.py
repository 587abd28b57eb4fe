"""gateway.parsing fills messages exactly as json_format.ParseDict does, or lets it."""

from __future__ import annotations

import copy
import json
import math
import random
from typing import Any

import pytest
from gateway_samples import filled_messages, message_types
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.v1 import manager_pb2
from gateway import parsing

ODD_VALUES: list[Any] = [
    None,
    "",
    "x",
    "5",
    " 5",
    "-0",
    "1e3",
    "NaN",
    1.5,
    math.nan,
    -7,
    2**70,
    True,
    [],
    {},
]


def outcome(parse: Any, data: Any, descriptor: Any) -> tuple[str, Any]:
    """What parsing ``data`` gives: the message's exact bytes, or the error's type and text."""
    message: Message = message_factory.GetMessageClass(descriptor)()
    try:
        parse(copy.deepcopy(data), message)
    except Exception as err:  # the reference may raise anything: compare it as it is
        return ("error", f"{type(err).__name__}: {err}")
    return ("message", message.SerializeToString(deterministic=True))


def reference(data: Any, message: Message) -> None:
    json_format.ParseDict(data, message, ignore_unknown_fields=False)


def plainer(data: Any, rnd: random.Random) -> Any:
    """The JSON with some quoted integers unquoted, as clients often send them."""
    if isinstance(data, dict):
        return {k: plainer(v, rnd) for k, v in data.items()}
    if isinstance(data, list):
        return [plainer(v, rnd) for v in data]
    if isinstance(data, str) and data.lstrip("-").isdigit() and rnd.random() < 0.5:
        return int(data)
    return data


def spoiled(data: Any, rnd: random.Random) -> Any:
    """The JSON with one value somewhere replaced by an odd one."""
    if isinstance(data, dict) and data:
        key = rnd.choice(list(data))
        out = dict(data)
        out[key] = spoiled(data[key], rnd) if rnd.random() < 0.6 else rnd.choice(ODD_VALUES)
        return out
    if isinstance(data, list) and data:
        i = rnd.randrange(len(data))
        return [*data[:i], spoiled(data[i], rnd), *data[i + 1 :]]
    return rnd.choice(ODD_VALUES)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_corral_message_parses_as_parse_dict_does(seed: int) -> None:
    rnd = random.Random(seed)
    for descriptor, message in filled_messages(rnd):
        data = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
        for variant in (data, plainer(data, rnd), spoiled(data, rnd), spoiled(data, rnd)):
            # The same bytes (presence included) or the same error.
            expected = outcome(reference, variant, descriptor)
            got = outcome(parsing.fill, variant, descriptor)
            assert got == expected, (descriptor.full_name, json.dumps(variant, default=str))


def test_a_plain_body_is_filled_without_parse_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("ParseDict was called")

    body = {
        "spec": {
            "name": "a",
            "runtime": "fake",
            "command": ["sleep", "1"],
            "env": {"A": "b"},
            "resources": {"cpu": 1, "memoryBytes": "1024"},
            "fake": {"duration": "1.5s"},
        }
    }
    expected = manager_pb2.SubmitTaskRequest()
    reference(body, expected)
    monkeypatch.setattr(json_format, "ParseDict", refuse)
    message = manager_pb2.SubmitTaskRequest()
    parsing.fill(body, message)
    assert message == expected and message.spec.resources.memory_bytes == 1024


def test_what_it_cannot_set_gets_parse_dicts_error() -> None:
    message = manager_pb2.SubmitTaskRequest()
    with pytest.raises(json_format.ParseError, match="Failed to parse spec field"):
        parsing.fill({"spec": {"name": "a", "resources": {"cpu": "lots"}}}, message)


def test_a_field_named_twice_is_set_as_parse_dict_sets_it() -> None:
    # By its JSON and its proto name: ParseDict keeps the last (a repeated one too).
    data = {
        "spec": {
            "dependsOn": [{}, {}],
            "depends_on": [{}],
            "workingDir": "/a",
            "working_dir": "/b",
        }
    }
    descriptor = manager_pb2.SubmitTaskRequest.DESCRIPTOR
    expected = outcome(reference, data, descriptor)
    assert expected[0] == "message"
    assert outcome(parsing.fill, data, descriptor) == expected


def test_two_members_of_a_oneof_get_parse_dicts_error() -> None:
    cases = []
    for descriptor in message_types():
        for oneof in descriptor.oneofs:
            if len(oneof.fields) < 2:  # proto3 `optional`: a oneof of one
                continue
            both = {f.json_name: _a_value(f) for f in oneof.fields[:2]}
            cases.append((both, descriptor))
    assert len(cases) >= 3
    for data, descriptor in cases:
        expected = outcome(reference, data, descriptor)
        assert expected[0] == "error", (descriptor.full_name, data)
        assert outcome(parsing.fill, data, descriptor) == expected


def _a_value(f: Any) -> Any:
    """A value ParseDict takes for ``f`` alone."""
    if f.message_type is not None:
        return {}
    kinds = {FieldDescriptor.CPPTYPE_STRING: "", FieldDescriptor.CPPTYPE_BOOL: False}
    return kinds.get(f.cpp_type, 0)
