"""Crash safety (product invariant 7): `autoscaler run` as a subprocess, SIGKILLed at named
points of the write-ahead protocol (the test hook `AUTOSCALER_CRASH_AT=<point>:<n>`, see
`autoscaler/runtime/actions.py`) and at seeded random moments, restarted, and driven through
zero -> up -> idle -> delete -> recreate against the simulator over real HTTP and a real
Redis list.

After every scenario: no deployment spec lost (every deployment ever created had the policy's
spec, and the store still holds it), no duplicate deployment (the simulator never saw one
name held twice), every intent resolved, and no two scale writes closer than the cooldown,
across the restarts (the simulator's own request log is the judge).

`CRASH_SEEDS=N` widens the random-kill family (default 3 seeds; CI keeps it short).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis

from autoscaler.runtime.actions import CRASH_ENV
from autoscaler.store.sqlite import SQLiteStore
from tests.runtime.daemon_support import (
    CREATE_SPEC,
    SimServer,
    policy_yaml,
    sim_server,
    start_daemon_process,
    write_config,
)
from tests.services import free_port, require_tcp

pytestmark = pytest.mark.slow

NAME = "crashy"
COOLDOWN = 0.6
PHASE_BOUND = 40.0  # seconds a phase may take, restarts included, before the test gives up

NAMED_CRASHES = [
    ("after_intent", 1),  # the create from zero: intent committed, create never sent
    ("after_create", 1),  # create sent, id never recorded
    ("after_call", 1),  # first scale sent, intent not resolved
    ("after_intent", 3),  # a later action (scale or delete) between intent and call
    ("after_spec_saved", 1),  # delete to zero: spec saved, no intent yet
    ("after_delete", 1),  # delete sent, not recorded
    ("after_resolve", 2),
    ("after_state_saved", 4),
]
RANDOM_SEEDS = list(range(int(os.environ.get("CRASH_SEEDS", "3"))))


class Scenario:
    def __init__(self, tmp: Path, sim: SimServer, crash: str | None, seed: int) -> None:
        self.sim = sim
        self.redis = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        self.key = f"test:crash:{uuid.uuid4().hex}"
        self.tmp = tmp
        self.log = tmp / "daemon.log"
        self.http_port = free_port()
        self.config = write_config(
            tmp,
            sim.url,
            {
                NAME: policy_yaml(
                    NAME,
                    redis_key=self.key,
                    interval="0.3s",
                    idle_after="1s",
                    cooldown=f"{COOLDOWN}s",
                )
            },
            http_port=self.http_port,
        )
        self.crash = crash
        self.rng = random.Random(seed)
        self.random_kills = crash is None
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.crashed = 0

    def start(self) -> None:
        env = {CRASH_ENV: self.crash} if self.crash and self.restarts == 0 else {}
        if not self.crash:
            env = {CRASH_ENV: ""}
        self.proc = start_daemon_process(self.config, env=env, log=self.log)
        self.started_at = time.monotonic()
        self.kill_at = (
            self.started_at + self.rng.uniform(0.8, 3.0)
            if self.random_kills and self.crashed < 3
            else None
        )

    def keep_alive(self) -> None:
        """Restart the daemon when it died; SIGKILL it at the seeded random moment."""
        assert self.proc is not None
        if self.kill_at is not None and time.monotonic() >= self.kill_at:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        code = self.proc.poll()
        if code is None:
            return
        assert code == -signal.SIGKILL, f"daemon exited with {code}; see {self.log}"
        self.crashed += 1
        self.restarts += 1
        self.start()

    def until(self, cond: Any, what: str) -> None:
        deadline = time.monotonic() + PHASE_BOUND
        while not cond():
            self.keep_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for: {what}; log {self.log}")
            time.sleep(0.05)

    def ready(self) -> bool:
        try:
            r = httpx.get(f"http://127.0.0.1:{self.http_port}/readyz", timeout=1)
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    def current(self) -> list[dict[str, Any]]:
        return self.sim.current(NAME)

    def replicas(self) -> int:
        found = self.current()
        return int(found[0]["replicas"]) if found and found[0]["status"] == "ready" else 0

    def run(self) -> None:
        self.start()
        try:
            self.redis.rpush(self.key, *range(12))
            self.until(lambda: self.replicas() == 3, "created from zero and scaled to 3")
            self.redis.delete(self.key)
            self.until(lambda: self.current() == [], "deleted to zero after idle")
            self.redis.rpush(self.key, *range(4))
            self.until(lambda: self.replicas() == 1, "recreated and ready")
            # Converged; stop cleanly (a clean stop resolves or keeps intents; none are open).
            self.kill_at = None
            # A restart may still be starting up: stop it only once it is ready (a SIGTERM
            # before the signal handlers exist ends the process the default way).
            self.until(self.ready, "daemon ready before SIGTERM")
            assert self.proc is not None
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                assert self.proc.wait(20) == 0, f"SIGTERM exit; see {self.log}"
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self.redis.delete(self.key)

    def check_invariants(self) -> None:
        snap = self.sim.snapshot()
        assert snap["names_held_twice"] == [], snap["names_held_twice"]
        assert snap["name_collisions"] == 0
        ours = [d for d in snap["deployments"] if d["name"] == NAME]
        assert len(ours) >= 2, "the scenario created, deleted and recreated"
        for dep in ours:
            assert dep["spec"] == CREATE_SPEC, f"spec changed or lost: {dep}"
        assert len([d for d in ours if d["id"] in snap["current"]]) == 1

        async def store_checks() -> None:
            store = SQLiteStore(str(self.tmp / "state.db"))
            await store.open()
            try:
                assert await store.pending_intents() == []
                saved = await store.load_spec(NAME)
                assert saved is not None and saved["create"] == CREATE_SPEC
            finally:
                await store.close()

        anyio.run(store_checks)

        requests = self.sim.app.state.sim.requests
        scale_writes = [
            r for r in requests if r["method"] == "PUT" and str(r["path"]).endswith("/scale")
        ]
        writes = [r for r in requests if r["method"] in ("POST", "PUT", "DELETE")]
        for w in scale_writes:
            before = [x["t"] for x in writes if x["t"] < w["t"] and x["status"] == 200]
            if before:
                # Decision-to-request delay is milliseconds; 0.25 s covers fsync jitter.
                assert w["t"] - max(before) >= COOLDOWN - 0.25, (w, max(before))


@pytest.fixture(autouse=True)
def _needs_redis() -> None:
    require_tcp("Redis", 6379)


@pytest.mark.parametrize(("point", "occurrence"), NAMED_CRASHES)
def test_crash_at_named_point(tmp_path: Path, point: str, occurrence: int) -> None:
    with sim_server(provision_seconds=0.3) as sim:
        scenario = Scenario(tmp_path, sim, f"{point}:{occurrence}", seed=occurrence)
        scenario.run()
        assert scenario.crashed >= 1, f"the daemon never reached {point} #{occurrence}"
        scenario.check_invariants()


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_sigkill_at_random_moments(tmp_path: Path, seed: int) -> None:
    with sim_server(provision_seconds=0.3) as sim:
        scenario = Scenario(tmp_path, sim, None, seed=seed)
        scenario.run()
        assert scenario.crashed >= 1
        scenario.check_invariants()
