"""gateway.printing prints exactly what json_format does, on every corral.v1 message."""

from __future__ import annotations

import json
import random

from gateway_samples import filled_messages
from google.protobuf import duration_pb2, json_format
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.v1 import manager_pb2, types_pb2
from gateway.messages import to_json
from gateway.printing import to_dict


def expected(message: Message) -> str:
    return json.dumps(json_format.MessageToDict(message, always_print_fields_with_no_presence=True))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_corral_message_prints_as_json_format_does(seed: int) -> None:
    for descriptor, message in filled_messages(random.Random(seed)):
        # The same keys in the same order, the same values (NaN, int64 strings, base64...).
        assert json.dumps(to_dict(message)) == expected(message), descriptor.full_name


def test_zero_values_are_present_and_unset_messages_absent() -> None:
    request = manager_pb2.SubmitTaskRequest(spec=types_pb2.TaskSpec(name="a"))
    out = to_json(request)
    assert out["spec"]["name"] == "a" and out["spec"]["command"] == []
    assert out["spec"]["env"] == {} and out["spec"]["workingDir"] == ""
    assert "resources" not in out["spec"]  # a message field has presence: unset is absent
    assert json.dumps(out) == expected(request)


def test_well_known_types_print_as_their_json_strings() -> None:
    duration = duration_pb2.Duration(seconds=1, nanos=500_000_000)
    assert to_dict(duration) == "1.500s"
    spec = types_pb2.TaskSpec(name="a", stop_grace=duration)
    assert to_dict(spec)["stopGrace"] == "1.500s"
