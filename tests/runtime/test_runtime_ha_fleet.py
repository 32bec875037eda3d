"""A leader with thousands of policies keeps its lease while it takes over.

On election the daemon reloads every policy's state (two queries per policy) and finishes
pending intents before it acts. When that ran inside the lease loop, no renewal was sent
meanwhile: with more policies than the lease allows time to reload, the leader lost the lease
at the end of every takeover and was elected again, for ever, never acting (10,000 policies on
a 15 s lease in benchmarks/bench_ha.py). Here 2,500 policies on a 2 s lease: the reload takes
longer than the lease, and the daemon must still lead under one epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.daemon_support import CREATE_SPEC, start_daemon_process, write_config
from tests.runtime.test_runtime_ha_harness import (
    Database,
    Member,
    Simulator,
    require_services,
    until,
)

pytestmark = pytest.mark.slow

POLICIES = 2500
TTL = "2s"


def fleet_policies(folder: Path, key: str) -> Path:
    """POLICIES policies in a few files, all reading one Redis list (one shared read)."""
    folder.mkdir(parents=True, exist_ok=True)
    create = json.dumps(CREATE_SPEC)
    docs = [
        f"""name: fleet-{i:05d}
deployment: {{provider: sim, name: fleet-{i:05d}, create: {create}}}
replicas: {{min: 0, max: 2}}
interval: 10s
scale_to_zero: {{after: 1h, activation: [{{metric: backlog, threshold: 0}}]}}
metrics:
  - name: backlog
    source: {{type: redis, url: "redis://127.0.0.1:6379/0", key: "{key}", mode: list}}
    target: {{type: average_value, value: 5}}
"""
        for i in range(POLICIES)
    ]
    for start in range(0, POLICIES, 500):
        (folder / f"fleet-{start:05d}.yaml").write_text("---\n".join(docs[start : start + 500]))
    return folder


def test_leader_of_a_large_fleet_keeps_its_lease(tmp_path: Path) -> None:
    require_services()
    db = Database().create()
    sim = None
    member = None
    try:
        sim = Simulator(tmp_path)
        policies = fleet_policies(tmp_path / "fleet", "test:ha:fleet:empty")
        config = write_config(tmp_path, sim.url, {}, state=db.dsn(), log_level="warning")
        text = config.read_text().replace(
            f"policies: {tmp_path / 'policies'}", f"policies: {policies}"
        )
        text = text.replace(f"url: {db.dsn()}", f"url: {db.dsn()}\n  lease_ttl: {TTL}")
        config.write_text(text)
        port = int(text.split("listen: 127.0.0.1:")[1].split()[0])
        member = Member(0, tmp_path, config, port, tmp_path / "daemon.log")
        member.proc = start_daemon_process(config, log=member.log)

        until(lambda: member.role() == "leader", "the daemon leads its fleet", bound=60, poll=0.5)
        first = member.status()
        assert first is not None
        epoch = first["epoch"]
        # Renewals go on (the lease is 2 s) while evaluations keep coming: many lease periods.
        evaluated = sum(p["evaluations"] for p in first["policies"].values())
        until(
            lambda: (
                (s := member.status()) is not None
                and sum(p["evaluations"] for p in s["policies"].values()) >= evaluated + POLICIES
            ),
            "every policy evaluated once more",
            bound=120,
            poll=0.5,
        )
        last = member.status()
        assert last is not None and last["role"] == "leader"
        assert last["epoch"] == epoch, "the leader lost its lease and was elected again"
        lease = db.lease()
        assert lease is not None and lease["epoch"] == epoch and lease["valid"]
        overdue = [e for e in member.events() if e.get("reason") == "renewal overdue"]
        assert overdue == [], overdue
    finally:
        if member is not None and member.proc is not None and member.proc.poll() is None:
            member.proc.kill()
            member.proc.wait(10)
        if sim is not None:
            sim.stop()
        db.drop()
