"""The leader loses its database: its PostgreSQL role may no longer log in and its backends are
terminated (`pg_terminate_backend`; every daemon connects with application_name "autoscaler",
so each daemon gets a login role of its own to be told apart). It must step down, a standby
must lead within the lease TTL plus one renewal period, and when the database comes back the
old leader stays a standby. A second, momentary cut (backends terminated once, login still
allowed) must leave exactly one leader. The simulator never sees a duplicate or conflicting
write.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.runtime.test_runtime_ha_harness import (
    ADMIN_DSN,
    NAME,
    TAKEOVER_BOUND,
    _sql,
    group,
    lease_events,
    until,
)

pytestmark = pytest.mark.slow


def terminate_once(role: str) -> None:
    _sql(
        ADMIN_DSN,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
        role,
        fetch=True,
    )


def test_leader_cut_off_from_the_database(tmp_path: Path) -> None:
    with group(tmp_path, 2, with_roles=True) as g:
        assert g.sim is not None
        g.load(3)
        old = g.start_all()
        until(lambda: g.sim.ready_replicas() == 1, "created from zero")
        assert g.db.connections_of(old.index) >= 1

        assert g.db.cut(old.index) >= 1
        cut_at = time.monotonic()
        new, seconds = g.takeover(old, cut_at)
        assert seconds <= TAKEOVER_BOUND, f"takeover took {seconds:.2f}s"
        until(lambda: old.role() == "standby", "the cut-off leader stepped down")
        until(lambda: old.readyz().status_code == 503, "the cut-off daemon is not ready")
        assert "lost_leadership" in lease_events(old)

        g.load(12)
        until(lambda: g.sim.ready_replicas() == 3, "scaled by the new leader")

        g.db.restore(old.index)
        until(lambda: old.readyz().status_code == 200, "the old leader reconnected")
        seen = old.status()
        assert seen is not None
        until(
            lambda: (
                (s := old.status()) is not None
                and s["policies"][NAME]["evaluations"] >= seen["policies"][NAME]["evaluations"] + 4
            ),
            "the old leader evaluating again",
        )
        assert g.leaders() == [new], "the old leader stays a standby once reconnected"

        # A momentary cut of the new leader: backends terminated once, login still allowed.
        # It may keep its lease (renewed on a fresh connection) or lose it; either way exactly
        # one daemon leads afterwards and the loop goes on.
        terminate_once(g.db.roles[new.index])
        g.load(20)
        until(lambda: g.sim.ready_replicas() == 4, "scaled after the momentary cut")
        g.wait_leader()
        g.load(0)
        until(lambda: g.sim.current() is None, "deleted to zero")
        g.load(3)
        until(lambda: g.sim.ready_replicas() == 1, "recreated after zero")
        g.stop_cleanly()
        g.check_invariants(expect_live=True)
