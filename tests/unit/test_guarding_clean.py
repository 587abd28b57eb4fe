"""``guarding._clean`` agrees with ``problem_of`` on every message: it only skips the
walk that names the field, never a refusal."""

from hypothesis import given
from hypothesis import strategies as st

from corral.guarding import _clean, problem_of
from corral.v1 import manager_pb2, schedules_pb2, types_pb2

enum_number = st.integers(min_value=0, max_value=9)
text = st.sampled_from(["", "x", "id-1"])


@st.composite
def task_specs(draw: st.DrawFn) -> types_pb2.TaskSpec:
    spec = types_pb2.TaskSpec(name=draw(text), runtime=draw(st.sampled_from(["", "fake"])))
    if draw(st.booleans()):
        spec.restart_policy.mode = draw(enum_number)  # type: ignore[assignment]
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        spec.depends_on.add(task_id=draw(text), condition=draw(enum_number))  # type: ignore[arg-type]
    if draw(st.booleans()):
        spec.http.url = draw(text)
    return spec


@st.composite
def submits(draw: st.DrawFn) -> manager_pb2.SubmitTasksRequest:
    request = manager_pb2.SubmitTasksRequest()
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        item = request.tasks.add(id=draw(text))
        if draw(st.booleans()):
            item.spec.CopyFrom(draw(task_specs()))
    return request


@given(submits())
def test_a_submit_is_clean_exactly_when_no_problem_is_found(
    request: manager_pb2.SubmitTasksRequest,
) -> None:
    assert _clean(request) == (problem_of(request) is None)


@given(st.lists(enum_number, max_size=3), text)
def test_a_list_is_clean_exactly_when_no_problem_is_found(states: list[int], token: str) -> None:
    request = manager_pb2.ListTasksRequest(page_token=token)
    request.states.extend(states)  # type: ignore[arg-type]
    assert _clean(request) == (problem_of(request) is None)


@given(text)
def test_a_required_id_is_checked(task_id: str) -> None:
    request = manager_pb2.GetTaskRequest(id=task_id)
    assert _clean(request) == (problem_of(request) is None) == bool(task_id)


def test_a_schedule_is_walked_too() -> None:
    request = schedules_pb2.CreateScheduleRequest()
    assert _clean(request) == (problem_of(request) is None)
