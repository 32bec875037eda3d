"""Leader election under SIGKILL: two and three `autoscaler run` processes on one PostgreSQL
database, the simulator server and a Redis list. The leader is killed by the crash hook at a
write-ahead point (`AUTOSCALER_CRASH_AT`, so the kill lands exactly between a provider call and
its record); a standby must lead within the lease TTL plus one renewal period, finish the dead
leader's intent without repeating its call, and carry on; the simulator must never see a
duplicate or conflicting write, and the spec must survive zero.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.runtime.test_runtime_ha_harness import (
    TAKEOVER_BOUND,
    Group,
    Member,
    group,
    until,
)

pytestmark = pytest.mark.slow


def died(g: Group, member: Member) -> float:
    """Waits for the crash hook to kill `member`; the monotonic time it was seen dead."""
    until(lambda: not member.alive, f"daemon {member.index} killed by its crash hook")
    return time.monotonic()


def takes_over(g: Group, old: Member, since: float) -> Member:
    new, seconds = g.takeover(old, since)
    assert seconds <= TAKEOVER_BOUND, f"takeover took {seconds:.2f}s (bound {TAKEOVER_BOUND}s)"
    return new


def test_three_daemons_leaders_killed_during_scale(tmp_path: Path) -> None:
    """Every leader dies right after its first scale call returned (intent unresolved): the
    next one takes over, resolves that intent without re-sending the call, and scales on.
    Three leaders die in a row; the first two, restarted as a supervisor would, finish."""
    with group(tmp_path, 3) as g:
        assert g.sim is not None
        g.load(3)  # one replica's worth: created with 1, then scaled by later load
        first = g.start_all(env={"AUTOSCALER_CRASH_AT": "after_call:1"})
        assert len(g.leaders()) == 1
        until(lambda: g.sim.ready_replicas() == 1, "created from zero, ready with 1 replica")

        g.load(12)  # -> 3 replicas: the scale call is sent, then the leader dies
        second = takes_over(g, first, died(g, first))
        until(lambda: g.sim.ready_replicas() == 3, "the scale the dead leader sent")

        g.load(20)  # -> 4 replicas, sent by the second leader, which then dies as well
        third = takes_over(g, second, died(g, second))
        until(lambda: g.sim.ready_replicas() == 4, "scaled to 4")
        assert third is not first and third is not second

        g.start(first.index)  # restarted without the crash hook
        g.start(second.index)
        until(lambda: first.role() == "standby" and second.role() == "standby", "standbys")
        g.load(0)  # idle: 4 -> 1 first (a scale: the third leader dies), then delete to zero
        fourth = takes_over(g, third, died(g, third))
        until(lambda: g.sim.current() is None, "deleted to zero by a restarted daemon")
        g.load(3)
        until(lambda: g.sim.ready_replicas() == 1, "recreated with the same name and spec")
        assert g.leaders() == [fourth]
        g.stop_cleanly()
        g.check_invariants(expect_live=True)
        scales = [i for i in g.db.intents() if i["kind"] == "scale"]
        reconciled = [i for i in scales if '"reconciled": "scale"' in (i["outcome"] or "")]
        assert len(reconciled) == 3, "each dead leader's scale was resolved by its successor"


@pytest.mark.parametrize(
    "point",
    [
        "after_intent:2",  # delete intent committed (the create was #1), delete not sent
        "after_delete:1",  # delete sent, not recorded
    ],
)
def test_leader_killed_during_delete_to_zero(tmp_path: Path, point: str) -> None:
    with group(tmp_path, 2) as g:
        assert g.sim is not None
        g.load(3)
        first = g.start_all(env={"AUTOSCALER_CRASH_AT": point})
        until(lambda: g.sim.ready_replicas() == 1, "created from zero")
        created = g.sim.current()
        assert created is not None

        g.load(0)  # idle -> delete to zero; the leader dies in the middle of it
        second = takes_over(g, first, died(g, first))
        until(lambda: g.sim.current() is None, "the delete finished by the new leader")

        g.start(first.index)
        until(lambda: first.role() == "standby", "the restarted daemon stands by")
        g.load(3)
        until(lambda: g.sim.ready_replicas() == 1, "recreated after zero")
        recreated = g.sim.current()
        assert recreated is not None and recreated["id"] != created["id"]
        assert recreated["spec"] == created["spec"], "the spec was kept across zero"
        if point.startswith("after_intent"):
            # The new leader never re-sends the dead one's unsent delete: it decides it
            # again (its first intent), so its create is its second and the same hook kills
            # it too; the restarted first daemon takes over and finishes the create.
            assert len(g.leaders()) == 1
        else:
            assert g.leaders() == [second]
        g.stop_cleanly()
        g.check_invariants(expect_live=True)
