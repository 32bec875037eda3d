"""Benchmark: several daemons on PostgreSQL (leader election).

1. Takeover time. Two `autoscaler run` processes share one PostgreSQL database (a throwaway
   database created on --pg-admin and dropped afterwards) and one NeevCloud simulator
   (`autoscaler sim-provider`, its own process). The leader is SIGKILLed; the time from the
   kill until the other daemon reports `"role": "leader"` on /status (polled every 20 ms) is
   measured, the killed daemon is restarted as the new standby, and so on for --runs runs.
   By design it lies between about 2/3 ttl and 4/3 ttl: the kill lands somewhere in the
   leader's renewal period (ttl/3), the lease expires ttl after its last renewal, and the
   standby tries every ttl/3; then the new leader reloads its policies' state before it says
   leader.

2. Policies one leader holds with the store on PostgreSQL. One daemon (leader of its own
   database) with N policies at a 15 s interval against the simulator (one deployment per
   policy, created beforehand; every policy reads one shared Prometheus exposition served from
   this process). Over a window after the start-up spread: p50 / p99 evaluation lag (from the
   daemon's own `autoscaler_evaluation_lag_seconds` histogram, interpolated within its
   buckets), CPU share of the daemon process (1.0 = one core), peak RSS, and the evaluations
   per second, each of which is one fenced state write to PostgreSQL; `leader_throughout`
   says whether it kept one lease (one epoch) over the whole window. Lease ttl: --capacity-ttl
   (the default 15 s). The takeover (every policy's state reloaded, pending intents finished)
   runs beside the lease loop, so a short ttl with thousands of policies still holds; this is
   where that capacity is measured (`--runs 0 --policies 2500 --capacity-ttl 2` is the fleet
   tests/runtime/test_runtime_ha_fleet.py once ran; that test now checks the logic with a
   takeover made slow on purpose, not the capacity).

Usage:
    .venv/bin/python benchmarks/bench_ha.py --runs 20 --ttl 3
    .venv/bin/python benchmarks/bench_ha.py --runs 0 --policies 500 1000 2000 --duration 60
    .venv/bin/python benchmarks/bench_ha.py --runs 5 --ttl 15 --takeover-policies 2000 --policies
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from daemon_fleet import (
    PYTHON,
    REPO,
    SPEC,
    TOKEN,
    cpu_seconds,
    free_port,
    lag_buckets,
    policy_name,
    precreate,
    quantile,
    rss_mb,
    serve_exposition,
    wait_port,
)

POLICIES_PER_FILE = 250


# --- plumbing ---------------------------------------------------------------------------------


async def _admin(admin_dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


class Database:
    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.name = f"autoscaler_bench_ha_{secrets.token_hex(5)}"
        base = admin_dsn.rsplit("/", 1)[0]
        self.dsn = f"{base}/{self.name}"
        asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{self.name}"'))

    def drop(self) -> None:
        asyncio.run(_admin(self.admin_dsn, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


def start_sim(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "autoscaler", "sim-provider", "--provider", "neevcloud",
         "--port", str(port), "--token", TOKEN, "--provision-seconds", "0"],
        cwd=REPO, stdout=(folder / "sim.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_port(port)
    return proc, port


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def write_config(
    folder: Path,
    *,
    count: int,
    sim_port: int,
    metrics_port: int,
    http_port: int,
    dsn: str,
    ttl: float,
    interval: str,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = json.dumps(SPEC)
    docs = [
        f"""name: {policy_name(i)}
deployment: {{provider: sim, name: {policy_name(i)}, create: {spec}}}
replicas: {{min: 1, max: 3}}
interval: {interval}
metrics:
  - name: waiting
    source: {{type: prometheus, url: "http://127.0.0.1:{metrics_port}/metrics",
              metric: "vllm:num_requests_waiting", timeout: 5s}}
    target: {{type: average_value, value: 5}}
"""
        for i in range(count)
    ]
    # Several files: the loader caps the values of one file (about 2,000 policies' worth).
    policy_dir = folder / "policies"
    policy_dir.mkdir(exist_ok=True)
    for start in range(0, count, POLICIES_PER_FILE):
        chunk = docs[start : start + POLICIES_PER_FILE]
        (policy_dir / f"policies-{start:05d}.yaml").write_text("---\n".join(chunk))
    (folder / "token").write_text(TOKEN)
    config = folder / "config.yaml"
    config.write_text(
        f"""policies: {policy_dir}
providers:
  sim:
    type: neevcloud
    base_url: http://127.0.0.1:{sim_port}
    org_id: org-b
    project_id: prj-b
    token: {{file: {folder / "token"}}}
state:
  url: {dsn}
  lease_ttl: {ttl}s
http:
  listen: 127.0.0.1:{http_port}
log:
  format: json
  level: warning
"""
    )
    return config


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PYTHON, "-m", "autoscaler", "run", "--config", str(config), "--no-watch"],
        cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def role(port: int, timeout: float = 0.5) -> str | None:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/status", timeout=timeout)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    body = r.json()
    return str(body["role"]) if body.get("config_loaded") else None


def alive(proc: subprocess.Popen[bytes]) -> bool:
    """True while it runs; raises (pointing at its log) once it has exited."""
    code = proc.poll()
    if code is not None:
        raise RuntimeError(
            f"a daemon exited with {code}; see its log under {tempfile.gettempdir()}"
        )
    return True


def epoch(port: int) -> int | None:
    body = httpx.get(f"http://127.0.0.1:{port}/status", timeout=30).json()
    return int(body["epoch"]) if body.get("epoch") is not None else None


def until(cond: Any, what: str, bound: float = 60, poll: float = 0.02) -> Any:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(poll)
    raise RuntimeError(f"gave up waiting for: {what}")


# --- 1. takeover --------------------------------------------------------------------------------


def bench_takeover(admin_dsn: str, runs: int, ttl: float, policies: int = 1) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-ha-takeover-"))
    db = Database(admin_dsn)
    exposition, metrics_port = serve_exposition()
    sim, sim_port = start_sim(folder)
    procs: list[subprocess.Popen[bytes] | None] = [None, None]
    ports = [free_port(), free_port()]
    configs = [
        write_config(
            folder / f"daemon{i}",
            count=policies,
            sim_port=sim_port,
            metrics_port=metrics_port,
            http_port=ports[i],
            dsn=db.dsn,
            ttl=ttl,
            interval="1s" if policies == 1 else "15s",
        )
        for i in range(2)
    ]
    times: list[float] = []
    # /status lists every policy: with thousands it takes a while to answer.
    poll_timeout = 0.2 if policies < 100 else 10.0
    try:
        if policies > 1:
            asyncio.run(precreate(sim_port, policies))
        for i in range(2):
            procs[i] = start_daemon(configs[i], folder / f"daemon{i}.log")
        for run in range(runs):
            roles = until(
                lambda: (r := [role(p, poll_timeout) for p in ports]) and sorted(map(str, r)) == [
                    "leader", "standby"
                ] and r,
                "one leader and one standby",
                bound=600,
            )  # fmt: skip
            leader = roles.index("leader")
            other = 1 - leader
            proc = procs[leader]
            assert proc is not None
            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            until(
                lambda port=ports[other]: role(port, poll_timeout) == "leader",
                "the standby leads",
                600,
                0.02,
            )
            seconds = time.monotonic() - killed
            times.append(seconds)
            proc.wait(10)
            print(f"  run {run + 1:>2}: takeover {seconds:.3f}s", flush=True)
            procs[leader] = start_daemon(configs[leader], folder / f"daemon{leader}.log")
    finally:
        for proc in procs:
            if proc is not None:
                stop(proc)
        stop(sim)
        exposition.shutdown()
        db.drop()
    ordered = sorted(times)
    return {
        "policies": policies,
        "ttl_s": ttl,
        "runs": len(times),
        "p50_s": round(statistics.median(ordered), 3) if ordered else None,
        "max_s": round(ordered[-1], 3) if ordered else None,
        "min_s": round(ordered[0], 3) if ordered else None,
        "design_bound_s": round(ttl + ttl / 3, 3),
    }


# --- 2. capacity ----------------------------------------------------------------------------


async def state_writes(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return int(
            await conn.fetchval(
                "SELECT n_tup_upd + n_tup_ins FROM pg_stat_user_tables WHERE relname = "
                "'policy_state'"
            )
            or 0
        )
    finally:
        await conn.close()


def bench_capacity(
    admin_dsn: str, count: int, duration: float, warmup: float, ttl: float
) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-ha-capacity-{count}-"))
    db = Database(admin_dsn)
    exposition, metrics_port = serve_exposition()
    sim, sim_port = start_sim(folder)
    http_port = free_port()
    daemon = None
    try:
        asyncio.run(precreate(sim_port, count))
        config = write_config(
            folder / "daemon", count=count, sim_port=sim_port, metrics_port=metrics_port,
            http_port=http_port, dsn=db.dsn, ttl=ttl, interval="15s",
        )  # fmt: skip
        started = time.monotonic()
        daemon = start_daemon(config, folder / "daemon.log")
        until(
            lambda: alive(daemon) and role(http_port, 5) == "leader", "the daemon leads", 300, 0.2
        )
        print(f"  {count} policies: leader after {time.monotonic() - started:.1f}s", flush=True)
        time.sleep(warmup)  # the start-up spread of the first evaluations
        epoch0 = epoch(http_port)
        before = lag_buckets(http_port)
        writes0 = asyncio.run(state_writes(db.dsn))
        cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
        peak = rss_mb(daemon.pid)
        while time.monotonic() - t0 < duration:
            time.sleep(1)
            peak = max(peak, rss_mb(daemon.pid))
        cpu1, t1 = cpu_seconds(daemon.pid), time.monotonic()
        after = lag_buckets(http_port)
        writes1 = asyncio.run(state_writes(db.dsn))
        p99, evaluations = quantile(before, after, 0.99)
        p50, _ = quantile(before, after, 0.50)
        still_leader = role(http_port, 5) == "leader" and epoch(http_port) == epoch0
        return {
            "policies": count,
            "window_s": round(t1 - t0, 1),
            "evaluations_per_s": round(evaluations / (t1 - t0), 1),
            "pg_state_writes_per_s": round((writes1 - writes0) / (t1 - t0), 1),
            "lag_p50_s": round(p50, 4),
            "lag_p99_s": round(p99, 4),
            "cpu_share": round((cpu1 - cpu0) / (t1 - t0), 3),
            "rss_peak_mb": round(peak, 1),
            "leader_throughout": still_leader,
        }
    finally:
        if daemon is not None:
            stop(daemon)
        stop(sim)
        exposition.shutdown()
        db.drop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a DSN allowed to CREATE / DROP DATABASE",
    )  # fmt: skip
    parser.add_argument("--runs", type=int, default=20, help="takeover runs (0: skip)")
    parser.add_argument("--ttl", type=float, default=3.0, help="lease ttl (takeover runs), s")
    parser.add_argument(
        "--capacity-ttl", type=float, default=15.0, help="lease ttl (capacity runs), s"
    )
    parser.add_argument(
        "--takeover-policies", type=int, default=1, help="policies the daemons hold (takeover)"
    )
    parser.add_argument("--policies", type=int, nargs="*", default=[500, 1000, 2000])
    parser.add_argument("--duration", type=float, default=60.0, help="measured window, s")
    parser.add_argument("--warmup", type=float, default=20.0, help="start-up spread, s")
    args = parser.parse_args()
    # SIGTERM runs the cleanup (child processes, throwaway databases) like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)

    if args.runs > 0:
        print(f"== takeover: 2 daemons, SIGKILL of the leader, ttl {args.ttl:g}s", flush=True)
        result = bench_takeover(args.pg_admin, args.runs, args.ttl, args.takeover_policies)
        print(json.dumps(result), flush=True)
        print(
            f"takeover over {result['runs']} runs (ttl {result['ttl_s']:g}s, "
            f"{result['policies']} policies): "
            f"p50 {result['p50_s']}s, max {result['max_s']}s, min {result['min_s']}s "
            f"(design bound ttl + ttl/3 = {result['design_bound_s']}s)"
        )
    results = []
    for count in args.policies:
        print(f"== capacity: one leader, {count} policies at 15s, state on PostgreSQL", flush=True)
        result = bench_capacity(args.pg_admin, count, args.duration, args.warmup, args.capacity_ttl)
        print(json.dumps(result), flush=True)
        results.append(result)
    if results:
        print("\npolicies  evals/s  pg writes/s  lag p50  lag p99  cpu(1=core)  rss peak MB")
        for r in results:
            print(
                f"{r['policies']:>8}  {r['evaluations_per_s']:>7}  {r['pg_state_writes_per_s']:>11}"
                f"  {r['lag_p50_s']:>7}  {r['lag_p99_s']:>7}  {r['cpu_share']:>11}"
                f"  {r['rss_peak_mb']:>11}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
