"""``Catalog.newest_in`` with a limit gives the first entries of the full answer."""

from hypothesis import given
from hypothesis import strategies as st

from corral.model import Task, TaskId, TaskSpec, TaskState, TaskStatus
from manager.catalog import Catalog, TaskEntry

STATES = list(TaskState)


def catalog_of(states: list[TaskState]) -> Catalog:
    catalog = Catalog()
    for seq, state in enumerate(states, start=1):
        task = Task(TaskId(f"t{seq}"), TaskSpec(name=f"t{seq}"), TaskStatus(state=state))
        catalog.add(TaskEntry(seq, task=task))
    return catalog


@given(
    states=st.lists(st.sampled_from(STATES), max_size=200),
    wanted=st.sets(st.sampled_from(STATES), min_size=1),
    below=st.none() | st.integers(min_value=0, max_value=210),
    limit=st.integers(min_value=1, max_value=20),
)
def test_a_limited_page_is_the_head_of_the_whole_answer(
    states: list[TaskState], wanted: set[TaskState], below: int | None, limit: int
) -> None:
    catalog = catalog_of(states)
    whole = [e.seq for e in catalog.newest_in(wanted, below)]
    expected = [
        seq
        for seq, state in reversed(list(enumerate(states, start=1)))
        if state in wanted and (below is None or seq < below)
    ]
    assert whole == expected
    assert [e.seq for e in catalog.newest_in(wanted, below, limit=limit)] == expected[:limit]
