"""The worker's lease arithmetic (worker.fencing) and the disconnect policy's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import ValidationError
from corral.model import Disconnect, TaskSpec, lease_stop_after
from manager.config import ManagerConfig
from worker.fencing import Lease, Terms


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_lease_holds_from_the_sending_of_the_heartbeat_it_answers() -> None:
    clock = Clock()
    lease = Lease(clock=clock)
    assert lease.age() is None  # never held: nothing to fence
    lease.granted(clock.now, Terms())
    clock.now += 1.0
    lease.sent(1)
    clock.now += 0.7  # the renewal arrives late; the lease counts from the sending
    lease.renew(1)
    assert lease.age() == pytest.approx(0.7)
    lease.renew(1)  # a duplicate changes nothing
    lease.renew(99)  # nor does an answer to a heartbeat never sent
    assert lease.age() == pytest.approx(0.7)


def test_an_older_renewal_never_moves_the_lease_back() -> None:
    clock = Clock()
    lease = Lease(clock=clock)
    lease.granted(clock.now, Terms())
    lease.sent(1)
    clock.now += 1
    lease.sent(2)
    lease.renew(2)
    lease.renew(1)  # forgotten once 2 was answered
    assert lease.age() == pytest.approx(0.0)


def test_a_refused_dial_renews_only_a_lease_once_held() -> None:
    clock = Clock()
    lease = Lease(clock=clock)
    lease.refused(clock.now)
    assert lease.age() is None
    lease.granted(clock.now, Terms())
    clock.now += 5
    lease.refused(clock.now - 1)
    assert lease.age() == pytest.approx(1.0)


def test_a_restarted_worker_counts_on_from_its_predecessors_renewal(tmp_path: Path) -> None:
    path = tmp_path / "lease.json"
    first = Lease(path)
    terms = Terms(ttl=6.0, heartbeat_interval=2.0, default=Disconnect(4.0, True))
    first.granted(first.clock() - 3.0, terms)
    second = Lease(path)
    assert second.terms == terms
    age = second.age()
    assert age is not None and 3.0 <= age < 4.0
    path.write_text("{broken")
    assert Lease(path).age() == float("inf")  # unreadable: counted as lapsed


def test_terms_leave_the_kill_inside_the_ttl() -> None:
    terms = Terms(ttl=3.0, heartbeat_interval=1.0, default=Disconnect(lease_stop_after(3.0), True))
    spec = TaskSpec(name="t")
    assert terms.stop_after(spec) == pytest.approx(2.0)
    assert terms.stop_after(spec) + terms.kill_window(2.0) + terms.margin == pytest.approx(3.0)
    assert terms.orphan_grace + terms.orphan_kill_wait < terms.ttl - terms.heartbeat_interval
    kept = TaskSpec(name="t", disconnect=Disconnect(replace=False))
    assert terms.stop_after(kept) is None
    own = TaskSpec(name="t", disconnect=Disconnect(stop_after=1.0, replace=False))
    assert terms.stop_after(own) == 1.0


def test_the_manager_wide_policy_is_derived_from_the_ttl_and_checked() -> None:
    assert ManagerConfig(ttl=3.0).disconnect == Disconnect(stop_after=2.0, replace=True)
    assert ManagerConfig(
        ttl=3.0, disconnect_stop_after=1.0, disconnect_replace=False
    ).disconnect == (Disconnect(stop_after=1.0, replace=False))
    with pytest.raises(ValidationError) as err:
        ManagerConfig(ttl=3.0, disconnect_stop_after=3.0)
    assert err.value.field == "disconnect_stop_after"
