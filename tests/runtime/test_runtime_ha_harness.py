"""The harness of the leader-election tests (no tests live here): a group of real
`autoscaler run` processes sharing one PostgreSQL database (created for the test, dropped
after), the NeevCloud simulator as a real `autoscaler sim-provider` subprocess, load through
a real Redis list, and the checks every scenario ends with.

What is judged, and by whom:
- who leads: each daemon's own `/status` (role, epoch) and the lease row in the database;
- what reached the provider: the simulator's `/_sim/deployments` and its write log
  `/_sim/requests` (the simulator is the judge of duplicates, never the daemons' logs);
- what the store holds: the intents and spec tables, read directly with asyncpg.

Waiting is done by polling a condition with a generous bound (`until`), never by sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

from tests.runtime.daemon_support import (
    CREATE_SPEC,
    PYTHON,
    REPO,
    TOKEN,
    policy_yaml,
    start_daemon_process,
    write_config,
)
from tests.services import free_port, port_open, require_tcp

PG = "127.0.0.1:5432"
ADMIN_DSN = f"postgresql://postgres@{PG}/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
NAME = "ha-chat"
LEASE_TTL = 3.0  # seconds; renewed every ttl/3
RENEW_EVERY = LEASE_TTL / 3
# A loaded 2-core machine delays a renewal loop, a process start or an HTTP poll by up to this
# much; the takeover bound is the design's (ttl + one renewal period) plus this allowance.
SCHEDULING_SLACK = 2.0
TAKEOVER_BOUND = LEASE_TTL + RENEW_EVERY + SCHEDULING_SLACK
BOUND = 40.0  # generous bound of any single wait


def require_services() -> None:
    require_tcp("PostgreSQL", 5432)
    require_tcp("Redis", 6379)


def until(cond: Callable[[], Any], what: str, bound: float = BOUND, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + bound
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        time.sleep(poll)


# --- PostgreSQL -------------------------------------------------------------------------------


def _sql(dsn: str, statement: str, *args: Any, fetch: bool = False) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            if fetch:
                return [dict(r) for r in await conn.fetch(statement, *args)]
            return await conn.execute(statement, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


@dataclass
class Database:
    """A database of its own; with `roles`, one login role per daemon (so one daemon's
    connections can be told apart and cut: application_name is "autoscaler" for all)."""

    name: str = field(default_factory=lambda: f"autoscaler_ha_{secrets.token_hex(5)}")
    roles: list[str] = field(default_factory=list)

    def create(self, daemons_with_roles: int = 0) -> Database:
        _sql(ADMIN_DSN, f'CREATE DATABASE "{self.name}"')
        for i in range(daemons_with_roles):
            role = f"{self.name}_d{i}"
            # Superuser: whichever daemon migrates first owns the tables, the others use them.
            _sql(ADMIN_DSN, f'CREATE ROLE "{role}" LOGIN SUPERUSER')
            self.roles.append(role)
        return self

    def drop(self) -> None:
        _sql(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        for role in self.roles:
            _sql(ADMIN_DSN, f'DROP ROLE IF EXISTS "{role}"')

    def dsn(self, daemon: int | None = None) -> str:
        user = self.roles[daemon] if daemon is not None and self.roles else "postgres"
        return f"postgresql://{user}@{PG}/{self.name}"

    def query(self, statement: str, *args: Any) -> list[dict[str, Any]]:
        return _sql(self.dsn(), statement, *args, fetch=True)  # type: ignore[no-any-return]

    def lease(self) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT holder, epoch, expires_at > clock_timestamp() AS valid FROM lease "
            "WHERE cluster = 'default'"
        )
        return rows[0] if rows else None

    def pending_intents(self) -> list[dict[str, Any]]:
        return self.query("SELECT id, kind, payload::text FROM intents WHERE resolved_at IS NULL")

    def intents(self) -> list[dict[str, Any]]:
        return self.query("SELECT id, kind, outcome::text AS outcome FROM intents ORDER BY id")

    def spec(self) -> dict[str, Any] | None:
        rows = self.query("SELECT spec::text FROM policy_spec WHERE policy = $1", NAME)
        return json.loads(rows[0]["spec"]) if rows else None

    def cut(self, daemon: int) -> int:
        """The daemon's role may no longer log in, and its open connections are terminated:
        the database is gone for it (a network partition, as far as it can tell)."""
        role = self.roles[daemon]
        _sql(ADMIN_DSN, f'ALTER ROLE "{role}" NOLOGIN')
        rows = _sql(
            ADMIN_DSN,
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
            "WHERE usename = $1 AND application_name = 'autoscaler'",
            role,
            fetch=True,
        )
        return sum(1 for r in rows if r["done"])

    def restore(self, daemon: int) -> None:
        _sql(ADMIN_DSN, f'ALTER ROLE "{self.roles[daemon]}" LOGIN')

    def connections_of(self, daemon: int) -> int:
        rows = _sql(
            ADMIN_DSN,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1",
            self.roles[daemon],
            fetch=True,
        )
        return int(rows[0]["n"])


# --- the simulator ----------------------------------------------------------------------------


class Simulator:
    """`autoscaler sim-provider --provider neevcloud` as its own process."""

    def __init__(self, folder: Path, provision_seconds: float = 0.3) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "sim.log"
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "autoscaler", "sim-provider", "--provider", "neevcloud",
             "--port", str(self.port), "--token", TOKEN,
             "--provision-seconds", str(provision_seconds)],
            cwd=str(REPO), stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        until(lambda: port_open("127.0.0.1", self.port, 0.2), f"simulator on {self.port}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def snapshot(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_sim/deployments", timeout=10).json()  # type: ignore[no-any-return]

    def writes(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/_sim/requests", timeout=10).json()["requests"]  # type: ignore[no-any-return]

    def current(self) -> dict[str, Any] | None:
        snap = self.snapshot()
        live = [d for d in snap["deployments"] if d["name"] == NAME and d["id"] in snap["current"]]
        assert len(live) <= 1, f"two live deployments named {NAME}: {live}"
        return live[0] if live else None

    def ready_replicas(self) -> int:
        dep = self.current()
        return int(dep["replicas"]) if dep and dep["status"] == "ready" else 0


# --- the daemons ------------------------------------------------------------------------------


@dataclass
class Member:
    index: int
    folder: Path
    config: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    frozen: bool = False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self) -> dict[str, Any] | None:
        """Its /status, or None when it does not answer (killed, frozen, starting)."""
        if not self.alive or self.frozen:
            return None
        try:
            response = httpx.get(f"http://127.0.0.1:{self.port}/status", timeout=1.0)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

    def role(self) -> str | None:
        status = self.status()
        return None if status is None or not status.get("config_loaded") else status["role"]

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def readyz(self) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=5)

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found


class Group:
    """N daemons on one database, one simulator and one Redis list."""

    def __init__(
        self,
        tmp: Path,
        size: int,
        *,
        with_roles: bool = False,
        idle_after: str = "1.5s",
        interval: str = "0.5s",
    ) -> None:
        require_services()
        self.tmp = tmp
        self.db = Database().create(size if with_roles else 0)
        self.sim: Simulator | None = None
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.key = f"test:ha:{uuid.uuid4().hex}"
        self.members: list[Member] = []
        try:
            self.sim = Simulator(tmp)
            policy = policy_yaml(NAME, redis_key=self.key, interval=interval, idle_after=idle_after)
            for i in range(size):
                folder = tmp / f"daemon{i}"
                port = free_port()
                dsn = self.db.dsn(i if with_roles else None)
                config = write_config(
                    folder, self.sim.url, {NAME: policy}, state=dsn, http_port=port
                )
                text = config.read_text().replace(
                    f"url: {dsn}", f"url: {dsn}\n  lease_ttl: {LEASE_TTL}s"
                )
                config.write_text(text)
                self.members.append(Member(i, folder, config, port, folder / "daemon.log"))
        except BaseException:
            self.close()
            raise

    # -- processes ---------------------------------------------------------------------------

    def start(self, i: int, env: dict[str, str] | None = None) -> Member:
        member = self.members[i]
        member.proc = start_daemon_process(
            member.config, env={"AUTOSCALER_CRASH_AT": "", **(env or {})}, log=member.log
        )
        member.frozen = False
        return member

    def start_all(self, env: dict[str, str] | None = None) -> Member:
        """Start every daemon; returns the one that leads once all are up."""
        for i in range(len(self.members)):
            self.start(i, env)
        until(
            lambda: all(m.role() is not None for m in self.members),
            "every daemon serving /status with its config loaded",
            bound=60,
        )
        return self.wait_leader()

    def kill(self, member: Member) -> float:
        """SIGKILL; returns the monotonic time of the kill."""
        assert member.proc is not None
        member.proc.send_signal(signal.SIGKILL)
        at = time.monotonic()
        member.proc.wait(10)
        return at

    def freeze(self, member: Member) -> None:
        assert member.proc is not None
        member.proc.send_signal(signal.SIGSTOP)
        member.frozen = True

    def thaw(self, member: Member) -> float:
        assert member.proc is not None
        member.proc.send_signal(signal.SIGCONT)
        member.frozen = False
        return time.time()

    def self_frozen(self, member: Member) -> bool:
        """True once the process stopped itself (the `:stop` crash hook)."""
        assert member.proc is not None
        try:
            state = Path(f"/proc/{member.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state == "T":
            member.frozen = True
        return state == "T"

    # -- leadership --------------------------------------------------------------------------

    def leaders(self) -> list[Member]:
        return [m for m in self.members if m.role() == "leader"]

    def wait_leader(self, exclude: Member | None = None, bound: float = BOUND) -> Member:
        def one() -> Member | None:
            found = [m for m in self.leaders() if m is not exclude]
            return found[0] if len(found) == 1 else None

        return until(one, "exactly one daemon reporting role leader", bound=bound)  # type: ignore[no-any-return]

    def takeover(self, old: Member, since: float) -> tuple[Member, float]:
        """The daemon that leads after `old`, and the seconds from `since` until it said so."""
        new = self.wait_leader(exclude=old)
        seconds = time.monotonic() - since
        status = new.status()
        assert status is not None
        return new, seconds

    # -- load ----------------------------------------------------------------------------

    def load(self, items: int) -> None:
        self.redis.delete(self.key)
        if items:
            self.redis.rpush(self.key, *range(items))

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        for member in self.members:
            if member.proc is not None and member.proc.poll() is None:
                if member.frozen:
                    member.proc.send_signal(signal.SIGCONT)
                member.proc.kill()
                member.proc.wait(10)
        if self.sim is not None:
            self.sim.stop()
        self.redis.delete(self.key)
        self.db.drop()

    def stop_cleanly(self) -> None:
        for member in self.members:
            if member.alive:
                assert member.proc is not None
                member.proc.send_signal(signal.SIGTERM)
        for member in self.members:
            if member.proc is not None:
                code = member.proc.wait(30)
                assert code in (0, -signal.SIGKILL), f"daemon {member.index} exited {code}"

    # -- the checks every scenario ends with ------------------------------------------------

    def check_invariants(self, *, expect_live: bool | None = None) -> None:
        """No duplicate or conflicting write reached the simulator, no spec was lost, every
        intent is resolved."""
        assert self.sim is not None
        snap = self.sim.snapshot()
        assert snap["names_held_twice"] == [], snap["names_held_twice"]
        assert snap["name_collisions"] == 0, "a create was sent for a name already held"
        ours = [d for d in snap["deployments"] if d["name"] == NAME]
        for dep in ours:
            assert dep["spec"] == CREATE_SPEC, f"spec changed or lost: {dep}"
        live = [d for d in ours if d["id"] in snap["current"]]
        assert len(live) <= 1
        if expect_live is not None:
            assert bool(live) == expect_live, live

        writes = [w for w in self.sim.writes() if str(w.get("status", "")).startswith("2")]
        creates = [w for w in writes if w["method"] == "POST" and w["path"].endswith("/aimodels")]
        assert len(creates) == len(ours), "every successful create made one deployment"
        per_id_scales: dict[str, list[int]] = {}
        deletes: dict[str, int] = {}
        for w in writes:
            parts = w["path"].rstrip("/").split("/")
            if w["method"] == "PUT" and parts[-1] == "scale":
                per_id_scales.setdefault(parts[-2], []).append(int(w["body"]["replicas"]))
            elif w["method"] == "DELETE":
                deletes[parts[-1]] = deletes.get(parts[-1], 0) + 1
        for dep_id, targets in per_id_scales.items():
            repeats = [a for a, b in itertools.pairwise(targets) if a == b]
            assert not repeats, f"the same scale sent twice to {dep_id}: {targets}"
        assert all(n == 1 for n in deletes.values()), f"a deployment deleted twice: {deletes}"

        assert self.db.pending_intents() == [], "an intent was left unresolved"
        saved = self.db.spec()
        if ours:
            assert saved is not None and saved["create"] == CREATE_SPEC, saved


@contextmanager
def group(tmp: Path, size: int, **kw: Any) -> Iterator[Group]:
    g = Group(tmp, size, **kw)
    try:
        yield g
    finally:
        g.close()


def lease_events(member: Member) -> list[str]:
    wanted = {"became_leader", "lost_leadership", "fenced", "leadership_lost", "standby"}
    return [e["event"] for e in member.events() if e.get("event") in wanted]
