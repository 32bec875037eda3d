"""A leader frozen past its lease (SIGSTOP: a paused VM, a long GC, a stuck host) and resumed
(SIGCONT): a standby leads meanwhile, and the resumed daemon steps down and never acts late.

Three ways in: an outside SIGSTOP while it scales; and the crash hook's `:stop` form freezing
it at an exact write-ahead point, so that on resume its very next step is an action: right
after the core state was saved with a `create` decision (its intent write must be refused by
the database's epoch fence), and right after the create intent was committed (the provider call
must be refused by the local lease check). The simulator's write log is the judge: nothing
reaches it from the resumed daemon.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.runtime.test_runtime_ha_harness import (
    NAME,
    TAKEOVER_BOUND,
    Group,
    Member,
    group,
    lease_events,
    until,
)

pytestmark = pytest.mark.slow


def gauge(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not exported"
    return float(match.group(1))


def evaluations(member: Member) -> int:
    status = member.status()
    return int(status["policies"][NAME]["evaluations"]) if status else -1


def at_rest(member: Member) -> bool:
    """Its last decision was to change nothing, and no action is unfinished."""
    status = member.status()
    if status is None:
        return False
    policy = status["policies"][NAME]
    decision = policy["last_decision"]
    return bool(decision) and decision["action"] == "none" and policy["pending_intent"] is None


def wait_resumed_standby(member: Member, more: int = 4) -> None:
    """Until the resumed daemon says standby and has run `more` evaluations since."""
    until(lambda: member.role() == "standby", f"daemon {member.index} standing by after resume")
    seen = evaluations(member)
    until(lambda: evaluations(member) >= seen + more, "evaluations after the resume")


def test_leader_paused_past_its_lease_steps_down(tmp_path: Path) -> None:
    with group(tmp_path, 2) as g:
        assert g.sim is not None
        g.load(3)
        old = g.start_all()
        until(lambda: g.sim.ready_replicas() == 1, "created from zero")

        # Role and epoch on /status and as metrics, on both.
        status = old.status()
        assert status is not None and status["role"] == "leader" and status["epoch"] >= 1
        assert gauge(old.metrics(), "autoscaler_is_leader") == 1
        assert gauge(old.metrics(), "autoscaler_leader_epoch") == status["epoch"]
        standby = next(m for m in g.members if m is not old)
        assert gauge(standby.metrics(), "autoscaler_is_leader") == 0
        assert old.readyz().status_code == 200 and standby.readyz().status_code == 200

        g.load(12)  # scaling work starts; the leader freezes in the middle of it
        g.freeze(old)
        frozen_at = time.monotonic()
        new, seconds = g.takeover(old, frozen_at)
        assert seconds <= TAKEOVER_BOUND, f"takeover took {seconds:.2f}s"
        new_status = new.status()
        assert new_status is not None and new_status["epoch"] > status["epoch"]
        assert gauge(new.metrics(), "autoscaler_is_leader") == 1
        assert gauge(new.metrics(), "autoscaler_leader_epoch") == new_status["epoch"]
        until(lambda: g.sim.ready_replicas() == 3, "the new leader finished the scale-up")
        until(lambda: at_rest(new), "the new leader at rest")

        writes_before = len(g.sim.writes())
        g.thaw(old)
        wait_resumed_standby(old)
        late = g.sim.writes()[writes_before:]
        assert late == [], f"writes after the old leader resumed: {late}"
        assert "lost_leadership" in lease_events(old)
        assert gauge(old.metrics(), "autoscaler_is_leader") == 0
        assert g.leaders() == [new]

        g.load(20)  # the new leader still acts; the old one still does not
        until(lambda: g.sim.ready_replicas() == 4, "scaled by the new leader")
        g.stop_cleanly()
        g.check_invariants(expect_live=True)


def frozen_first_leader(g: Group, point: str) -> Member:
    """Daemon 0 alone, with the `:stop` hook: it leads, reaches `point` and freezes there.
    Then daemon 1 starts and must take the lease over once it expires."""
    old = g.start(0, env={"AUTOSCALER_CRASH_AT": f"{point}:stop"})
    until(lambda: g.self_frozen(old), f"daemon 0 frozen at {point}")
    new = g.start(1)
    until(lambda: new.role() == "leader", "daemon 1 took the lease over")
    return old


@pytest.mark.parametrize(
    ("point", "refusal"),
    [
        # Frozen after saving a `create` decision: on resume it writes the create intent
        # under its old epoch; the database refuses it.
        ("after_state_saved:1", "write refused: lease epoch 1"),
        # Frozen after committing the create intent: on resume it checks its lease before
        # calling the provider; its local deadline has long passed.
        ("after_intent:1", "does not hold the lease"),
    ],
)
def test_resumed_leader_is_fenced_before_acting(tmp_path: Path, point: str, refusal: str) -> None:
    with group(tmp_path, 2) as g:
        assert g.sim is not None
        g.load(3)  # the first evaluation already decides to create
        old = frozen_first_leader(g, point)
        new = g.members[1]
        until(lambda: g.sim.ready_replicas() == 1, "created by the new leader")
        until(lambda: at_rest(new), "the new leader at rest")

        writes_before = len(g.sim.writes())
        g.thaw(old)
        until(
            lambda: any(
                e.get("event") == "fenced" and refusal in e.get("error", "") for e in old.events()
            ),
            f"the resumed daemon refused ({refusal!r})",
        )
        wait_resumed_standby(old)
        late = g.sim.writes()[writes_before:]
        assert late == [], f"writes after the old leader resumed: {late}"
        assert g.leaders() == [new]
        g.stop_cleanly()
        g.check_invariants(expect_live=True)
        creates = [w for w in g.sim.writes() if w["method"] == "POST"]
        assert len(creates) == 1, creates
