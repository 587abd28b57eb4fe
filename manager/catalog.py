"""The in-memory index of tasks: by id, by name, and in submission order.

Entries loaded from the store keep their raw rows and decode on first use,
so a restart with 100,000 stored tasks costs a row scan, not 100,000
protobuf decodes; listing by state or node never decodes at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from heapq import nlargest
from itertools import chain, islice

from corral.errors import ValidationError
from corral.model import Task, TaskId, TaskState
from manager.store import TaskRow

# The shortest id prefix that names a task (the CLI's tables show 8 characters).
MIN_PREFIX = 8


class TaskEntry:
    __slots__ = ("_row", "_task", "id", "name", "node_id", "seq", "state")

    def __init__(self, seq: int, *, task: Task | None = None, row: TaskRow | None = None) -> None:
        self.seq = seq
        self._task = task
        self._row = row
        if task is not None:
            self.id, self.name, self.state = task.id, task.spec.name, task.status.state
            self.node_id = task.status.node_id
        elif row is not None:
            self.id, self.name, self.state, self.node_id = row.id, row.name, row.state, row.node_id
        else:
            raise ValueError("an entry needs a task or a row")

    @property
    def task(self) -> Task:
        if self._task is None:
            assert self._row is not None
            self._task = self._row.decode()
            self._row = None
        return self._task

    def set(self, task: Task) -> None:
        self._task, self._row = task, None
        self.state, self.node_id = task.status.state, task.status.node_id


class Catalog:
    def __init__(self) -> None:
        self.by_id: dict[TaskId, TaskEntry] = {}
        # Names are unique among tasks that are not final.
        self.active_names: dict[str, TaskId] = {}
        self.latest_names: dict[str, TaskId] = {}
        self._order: list[TaskEntry] = []
        # Entries by state (keyed by seq): a query for a few states (the active
        # ones, polled while most tasks are finished) reads only those entries.
        self._by_state: dict[TaskState, dict[int, TaskEntry]] = {s: {} for s in TaskState}
        self.next_seq = 1

    def __len__(self) -> int:
        return len(self.by_id)

    def count(self, state: TaskState) -> int:
        return len(self._by_state[state])

    def add(self, entry: TaskEntry) -> None:
        self.by_id[entry.id] = entry
        self._order.append(entry)
        self._by_state[entry.state][entry.seq] = entry
        self.latest_names[entry.name] = entry.id
        if not entry.state.final:
            self.active_names[entry.name] = entry.id
        self.next_seq = max(self.next_seq, entry.seq + 1)

    def discard(self, entry: TaskEntry) -> None:
        """Undo ``add`` (a submission whose commit failed)."""
        self.by_id.pop(entry.id, None)
        self._by_state[entry.state].pop(entry.seq, None)
        if self._order and self._order[-1] is entry:
            self._order.pop()
        else:
            self._order = [e for e in self._order if e is not entry]
        if self.active_names.get(entry.name) == entry.id:
            del self.active_names[entry.name]
        if self.latest_names.get(entry.name) == entry.id:
            older = [e for e in self._order if e.name == entry.name]
            if older:
                self.latest_names[entry.name] = older[-1].id
            else:
                del self.latest_names[entry.name]

    def forget(self, entries: Collection[TaskEntry]) -> None:
        """Drop finished entries (retention), in one pass over the order whatever their number."""
        gone = {e.seq for e in entries}
        if not gone:
            return
        self._order = [e for e in self._order if e.seq not in gone]
        for e in self._order:
            if e.name in self.latest_names:
                self.latest_names[e.name] = e.id
        for entry in entries:
            self.by_id.pop(entry.id, None)
            self._by_state[entry.state].pop(entry.seq, None)
            if self.latest_names.get(entry.name) == entry.id:
                del self.latest_names[entry.name]

    def update(self, entry: TaskEntry, task: Task) -> None:
        before = entry.state
        entry.set(task)
        if entry.state is not before:
            del self._by_state[before][entry.seq]
            self._by_state[entry.state][entry.seq] = entry
        if entry.state.final and self.active_names.get(entry.name) == entry.id:
            del self.active_names[entry.name]

    def resolve(self, ref: str) -> TaskEntry | None:
        """By id, else the newest task with that name, else a unique id prefix (8+ characters).

        An ambiguous prefix raises ValidationError listing the ids it matches.
        """
        entry = self.by_id.get(TaskId(ref))
        if entry is None and (by_name := self.latest_names.get(ref)) is not None:
            entry = self.by_id.get(by_name)
        if entry is None and len(ref) >= MIN_PREFIX:
            entry = self._by_prefix(ref)
        return entry

    def _by_prefix(self, prefix: str) -> TaskEntry | None:
        # A scan, but only after the id and name lookups missed: what a person typed.
        matches = [task_id for task_id in self.by_id if task_id.startswith(prefix)]
        if len(matches) > 1:
            shown = ", ".join(sorted(matches)[:10]) + (", ..." if len(matches) > 10 else "")
            raise ValidationError(
                "id", f"{prefix!r} is ambiguous: it starts {len(matches)} task ids ({shown})"
            )
        return self.by_id[matches[0]] if matches else None

    def newest_first(self, below_seq: int | None = None) -> Iterator[TaskEntry]:
        order = self._order
        # Entries are appended in seq order, so a bisect finds where a page resumes.
        hi = len(order)
        if below_seq is not None:
            lo = 0
            while lo < hi:
                mid = (lo + hi) // 2
                if order[mid].seq < below_seq:
                    lo = mid + 1
                else:
                    hi = mid
        for i in range(hi - 1, -1, -1):
            yield order[i]

    def newest_in(
        self, states: Collection[TaskState], below_seq: int | None = None, *, limit: int = 0
    ) -> Iterator[TaskEntry]:
        """Like ``newest_first``, only entries in ``states``; with ``limit``, at most that
        many (the caller filters no further)."""
        count = sum(len(self._by_state[s]) for s in states)
        if count * 8 > len(self._order):
            # Many match: walking the order and skipping is cheaper than sorting them.
            walk = (e for e in self.newest_first(below_seq) if e.state in states)
            return islice(walk, limit) if limit else walk
        by_state = [self._by_state[s] for s in states]
        if limit:
            # A page of a few (a client polling for what is still active): the largest
            # seqs, compared in C, then their entries; no Python call per candidate.
            seqs: Iterable[int] = chain.from_iterable(by_state)
            if below_seq is not None:
                seqs = filter(below_seq.__gt__, seqs)
            return (next(d[seq] for d in by_state if seq in d) for seq in nlargest(limit, seqs))
        found = [
            e
            for s in states
            for e in self._by_state[s].values()
            if below_seq is None or e.seq < below_seq
        ]
        found.sort(key=_seq, reverse=True)
        return iter(found)

    def active(self) -> Iterator[TaskEntry]:
        return (e for e in self._order if e.state not in _FINAL)


def _seq(entry: TaskEntry) -> int:
    return entry.seq


_FINAL = frozenset(s for s in TaskState if s.final)
