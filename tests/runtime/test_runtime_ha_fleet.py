"""A leader keeps its lease while a takeover lasts longer than the lease.

On election the daemon reloads every policy's state and finishes the pending intents before it
acts. When that ran inside the lease loop, no renewal was sent meanwhile: a takeover longer
than the lease lost it at the end, and the daemon was elected again, for ever, never acting
(10,000 policies on a 15 s lease; 2,500 on a 2 s lease). The takeover now runs in a task
beside the lease loop.

This is the correctness check, at a size that proves nothing about capacity: a few policies,
each with a pending intent left in the store, and a provider that answers every GET after
LATENCY seconds, so finishing the intents (one provider lookup each, one after another)
outlasts several 2 s leases by construction, whatever the machine's speed. How many policies
one leader holds is a benchmark: `benchmarks/bench_ha.py --runs 0 --policies 2500
--capacity-ttl 2` (its `leader_throughout` says whether one lease held).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import anyio
import httpx
import pytest

from autoscaler.store.postgres import PostgresStore
from tests.runtime.daemon_support import CREATE_SPEC, start_daemon_process, write_config
from tests.runtime.test_runtime_ha_harness import (
    Database,
    Member,
    Simulator,
    require_services,
    until,
)

pytestmark = pytest.mark.slow

POLICIES = 6
TTL = 2.0
LATENCY = 1.5  # seconds before every provider GET is answered (below the 2 s call timeout)


def fleet_policies(folder: Path, key: str) -> Path:
    """POLICIES policies, all reading one Redis list (one shared read)."""
    folder.mkdir(parents=True, exist_ok=True)
    create = json.dumps(CREATE_SPEC)
    docs = [
        f"""name: fleet-{i:05d}
deployment: {{provider: sim, name: fleet-{i:05d}, create: {create}}}
replicas: {{min: 0, max: 2}}
interval: 2s
scale_to_zero: {{after: 1h, activation: [{{metric: backlog, threshold: 0}}]}}
metrics:
  - name: backlog
    source: {{type: redis, url: "redis://127.0.0.1:6379/0", key: "{key}", mode: list}}
    target: {{type: average_value, value: 5}}
"""
        for i in range(POLICIES)
    ]
    (folder / "fleet.yaml").write_text("---\n".join(docs))
    return folder


def leave_pending_intents(dsn: str) -> None:
    """One unfinished scale per policy, as a leader killed mid-call leaves them."""

    async def write() -> None:
        store = PostgresStore(dsn)
        await store.open()
        try:
            for i in range(POLICIES):
                name = f"fleet-{i:05d}"
                payload = {"name": name, "provider": "sim", "from": 1, "replicas": 2}
                await store.begin_intent(name, "scale", payload)
        finally:
            await store.close()

    anyio.run(write)


def at(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def test_a_takeover_longer_than_the_lease_keeps_the_lease(tmp_path: Path) -> None:
    require_services()
    db = Database().create()
    sim = None
    member = None
    try:
        sim = Simulator(tmp_path)
        leave_pending_intents(db.dsn())
        httpx.post(
            f"{sim.url}/_sim/faults", json={"latency": LATENCY, "methods": ["GET"]}, timeout=10
        ).raise_for_status()
        policies = fleet_policies(tmp_path / "fleet", "test:ha:fleet:empty")
        config = write_config(tmp_path, sim.url, {}, state=db.dsn(), log_level="info")
        text = config.read_text().replace(
            f"policies: {tmp_path / 'policies'}", f"policies: {policies}"
        )
        text = text.replace(f"url: {db.dsn()}", f"url: {db.dsn()}\n  lease_ttl: {TTL}s")
        config.write_text(text)
        port = int(text.split("listen: 127.0.0.1:")[1].split()[0])
        member = Member(0, tmp_path, config, port, tmp_path / "daemon.log")
        member.proc = start_daemon_process(config, log=member.log)

        # The takeover is done when every intent left behind is finished.
        until(lambda: db.pending_intents() == [], "the takeover finished every intent", bound=180)
        events = member.events()
        elected = [e for e in events if e.get("event") == "became_leader"]
        reconciled = [e for e in events if e.get("event") == "intent_reconciled"]
        assert len(elected) == 1 and len(reconciled) == POLICIES, (elected, reconciled)
        took = max(map(at, reconciled)) - at(elected[0])
        # The premise: the takeover outlasted the lease (by construction: POLICIES lookups of
        # LATENCY s each, one after another).
        assert took > 2 * TTL, f"takeover took {took:.1f}s: the test proves nothing"

        until(lambda: member.role() == "leader", "the daemon leads its fleet", bound=60, poll=0.5)
        first = member.status()
        assert first is not None
        epoch = first["epoch"]
        assert epoch == elected[0]["epoch"]
        # It keeps leading while every policy evaluates again (each evaluation waits LATENCY
        # for the provider list): many lease periods, one epoch.
        evaluated = sum(p["evaluations"] for p in first["policies"].values())
        until(
            lambda: (
                (s := member.status()) is not None
                and sum(p["evaluations"] for p in s["policies"].values())
                >= evaluated + 2 * POLICIES
            ),
            "every policy evaluated twice more",
            bound=120,
            poll=0.5,
        )
        last = member.status()
        assert last is not None and last["role"] == "leader"
        assert last["epoch"] == epoch, "the leader lost its lease and was elected again"
        lease = db.lease()
        assert lease is not None and lease["epoch"] == epoch and lease["valid"]
        lost = [
            e
            for e in member.events()
            if e.get("event") in ("lost_leadership", "became_leader", "fenced")
        ]
        assert lost == elected, lost
    finally:
        if member is not None and member.proc is not None and member.proc.poll() is None:
            member.proc.kill()
            member.proc.wait(10)
        if sim is not None:
            sim.stop()
        db.drop()
