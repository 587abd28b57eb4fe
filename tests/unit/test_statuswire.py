"""``statuswire.status_bytes`` writes the very bytes upb writes for ``status_to``."""

from hypothesis import given
from hypothesis import strategies as st

from corral.convert import status_to
from corral.convert.statuswire import status_bytes, varint
from corral.model import Health, HttpResult, PortMapping, TaskState, TaskStatus
from corral.v1 import types_pb2

times = st.none() | st.floats(min_value=-1e10, max_value=4e9, allow_nan=False) | st.just(0.0)
int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
uint32 = st.integers(min_value=0, max_value=2**32 - 1)

statuses = st.builds(
    TaskStatus,
    state=st.sampled_from(TaskState),
    node_id=st.text(max_size=20),
    generation=st.integers(min_value=0, max_value=2**64 - 1),
    attempts=uint32,
    exit_code=st.none() | int32,
    message=st.text(max_size=300),
    restart_count=uint32,
    created_at=times,
    scheduled_at=times,
    started_at=times,
    finished_at=times,
    updated_at=times,
    health=st.sampled_from(Health),
    next_attempt_at=times,
)


@given(statuses)
def test_the_bytes_are_upbs(status: TaskStatus) -> None:
    assert status_bytes(status) == status_to(status).SerializeToString()


@given(statuses)
def test_the_bytes_decode_to_the_message(status: TaskStatus) -> None:
    assert types_pb2.TaskStatus.FromString(status_bytes(status)) == status_to(status)


def test_ports_and_results_take_the_message_path() -> None:
    status = TaskStatus(
        state=TaskState.COMPLETED,
        ports=(PortMapping(container_port=80, host_port=8080),),
        result=HttpResult(status_code=204),
    )
    assert status_bytes(status) == status_to(status).SerializeToString()


def test_a_zero_time_and_a_zero_exit_code_are_still_sent() -> None:
    decoded = types_pb2.TaskStatus.FromString(status_bytes(TaskStatus(created_at=0.0, exit_code=0)))
    assert decoded.HasField("created_at") and decoded.HasField("exit_code")


def test_varint_of_a_negative_number_is_its_64_bit_complement() -> None:
    assert varint(-1) == b"\xff" * 9 + b"\x01"
    assert varint(300) == b"\xac\x02"
