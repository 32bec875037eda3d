"""Store throughput per backend: save_state ops/s (plain and fenced), begin+resolve intent pairs
per second, and from those how many policies one leader can evaluate per 15 s interval when each
evaluation does one fenced save_state.

    .venv/bin/python benchmarks/bench_store.py                       # SQLite and PostgreSQL
    .venv/bin/python benchmarks/bench_store.py --backend sqlite --ops 3000

PostgreSQL: a throwaway database is created on --pg-admin (trust auth on loopback) and dropped
afterwards. Figures are printed, not asserted.

Takeover (PostgreSQL): two Leadership loops with --ttl; the leader's renewals stop at a random
point of its renewal period (as when its host dies); the time until the standby leads is
measured over --takeover-runs runs. Expect about ttl - margin .. ttl + ttl/3.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import structlog

from autoscaler.store import Lease, Store, open_store
from autoscaler.store.base import HistoryRecord
from autoscaler.store.leader import Leadership
from autoscaler.store.postgres import PostgresStore

INTERVAL = 15.0


def sample_state(i: int) -> dict[str, Any]:
    """About what the core keeps per policy: recent recommendations and timestamps."""
    return {
        "replicas": i % 7,
        "last_scale_at": 1_700_000_000.0 + i,
        "recommendations": [[1_700_000_000.0 + i - k * 15, (i + k) % 9] for k in range(20)],
        "idle_since": None,
        "override": None,
    }


async def timed(
    ops: int, concurrency: int, op: Callable[[int], Awaitable[None]]
) -> tuple[float, float]:
    """(ops per second, p99 latency ms) for `ops` calls spread over `concurrency` workers."""
    latencies: list[float] = []
    counter = iter(range(ops))

    async def worker() -> None:
        for i in counter:
            start = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return ops / elapsed, latencies[int(len(latencies) * 0.99) - 1] * 1000


async def bench(name: str, store: Store, ops: int, concurrency: int, policies: int) -> None:
    await store.open()
    try:
        lease = await store.acquire_lease("default", "bench", 600)
        assert lease is not None
        epoch = lease.epoch

        async def save(i: int) -> None:
            await store.save_state(f"policy-{i % policies}", sample_state(i))

        async def save_fenced(i: int) -> None:
            await store.save_state(f"policy-{i % policies}", sample_state(i), epoch=epoch)

        async def intent_pair(i: int) -> None:
            intent = await store.begin_intent(
                f"policy-{i % policies}", "scale", {"name": f"d{i}", "replicas": 3}, epoch=epoch
            )
            await store.resolve_intent(intent.id, {"ok": True}, epoch=epoch)

        rows = [
            ("save_state", 1, save),
            ("save_state fenced", 1, save_fenced),
            (f"save_state fenced x{concurrency}", concurrency, save_fenced),
            ("begin+resolve fenced", 1, intent_pair),
            (f"begin+resolve fenced x{concurrency}", concurrency, intent_pair),
        ]
        results: dict[str, float] = {}
        for label, workers, op in rows:
            await op(0)  # warm up (prepared statements, pool)
            rate, p99 = await timed(ops, workers, op)
            results[label] = rate
            print(f"{name:<11} {label:<32} {rate:>9.0f} ops/s   p99 {p99:6.2f} ms")
        # Decision history: one record per call (pruned each time) against the daemon's
        # batches (HistoryBuffer: one transaction a second, a policy pruned every keep/10).
        observation = {"t": 1.0, "status": "ready", "replicas": 3, "metrics": {"waiting": 7.0}}
        decision = {"t": 1.0, "action": "none", "replicas": 3, "reasons": ["no_change"]}

        async def one_record(i: int) -> None:
            await store.record_decision(f"policy-{i % policies}", float(i), observation, decision)

        batch = 250

        async def batched(i: int) -> None:
            records = [
                HistoryRecord(
                    f"policy-{(i * batch + j) % policies}", float(i), observation, decision
                )
                for j in range(batch)
            ]
            prune = [r.policy for r in records[: batch // 10]]
            await store.record_decisions(records, prune=prune)

        rate, p99 = await timed(ops, 1, one_record)
        print(f"{name:<11} {'record_decision (pruned)':<32} {rate:>9.0f} ops/s   p99 {p99:6.2f} ms")
        rate, p99 = await timed(max(1, ops // batch), 1, batched)
        print(
            f"{name:<11} {f'record_decisions x{batch} batch':<32} {rate * batch:>9.0f} records/s"
            f"   p99 {p99:6.2f} ms a batch"
        )
        best = max(results["save_state fenced"], results[f"save_state fenced x{concurrency}"])
        print(
            f"{name:<11} => one leader can evaluate ~{best * INTERVAL:,.0f} policies per "
            f"{INTERVAL:.0f} s interval (one fenced save_state each, store alone; "
            f"{best * INTERVAL / 2:,.0f} at 50% store headroom)"
        )
    finally:
        await store.close()


class DyingStore:
    """Delegates to a real store until `dead`; then lease renewals never return."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.dead = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def acquire_lease(self, cluster: str, holder: str, ttl: float) -> Lease | None:
        if self.dead:
            await anyio.sleep_forever()
        return await self.inner.acquire_lease(cluster, holder, ttl)


async def takeover_once(dsn: str, ttl: float, cluster: str) -> float:
    store_a, store_b = PostgresStore(dsn), PostgresStore(dsn)
    await store_a.open()
    await store_b.open()
    try:
        dying = DyingStore(store_a)
        leader = Leadership(dying, cluster, ttl=ttl, holder="a")  # type: ignore[arg-type]
        standby = Leadership(store_b, cluster, ttl=ttl, holder="b")
        async with anyio.create_task_group() as tg:
            await tg.start(leader.run)
            await tg.start(standby.run)
            assert leader.is_leader
            await anyio.sleep(random.uniform(0, ttl / 3))
            dying.dead = True
            died = time.perf_counter()
            await standby.wait_elected()
            elapsed = time.perf_counter() - died
            tg.cancel_scope.cancel()
        return elapsed
    finally:
        await store_a.close()
        await store_b.close()


async def bench_takeover(dsn: str, ttl: float, runs: int) -> None:
    times = sorted([await takeover_once(dsn, ttl, f"takeover-{i}") for i in range(runs)])
    print(
        f"postgresql  takeover with ttl {ttl:g} s over {runs} runs: "
        f"p50 {statistics.median(times):.2f} s, max {times[-1]:.2f} s, min {times[0]:.2f} s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--ops", type=int, default=2000, help="operations per row")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--policies", type=int, default=1000, help="distinct policy rows")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-pool", type=int, default=8, help="PostgreSQL pool max size")
    parser.add_argument("--ttl", type=float, default=2.0, help="lease ttl for the takeover runs")
    parser.add_argument("--takeover-runs", type=int, default=10)
    args = parser.parse_args()
    # The takeover runs make the leader's renewals fail on purpose; keep their warnings quiet.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))

    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
            await bench("sqlite", open_store(url), args.ops, args.concurrency, args.policies)
    if args.backend in ("postgresql", "both"):
        database = f"autoscaler_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(args.pg_admin)
        await admin.execute(f'CREATE DATABASE "{database}"')
        try:
            dsn = args.pg_admin.rsplit("/", 1)[0] + f"/{database}"
            store = PostgresStore(dsn, max_size=args.pg_pool)
            await bench("postgresql", store, args.ops, args.concurrency, args.policies)
            if args.takeover_runs > 0:
                await bench_takeover(dsn, args.ttl, args.takeover_runs)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
