"""Store throughput per backend: save_state ops/s (plain and fenced), begin+resolve intent pairs
per second, and from those how many policies one leader can evaluate per 15 s interval when each
evaluation does one fenced save_state.

    .venv/bin/python benchmarks/bench_store.py                       # SQLite and PostgreSQL
    .venv/bin/python benchmarks/bench_store.py --backend sqlite --ops 3000

PostgreSQL: a throwaway database is created on --pg-admin (trust auth on loopback) and dropped
afterwards. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from autoscaler.store import Store, open_store
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
        best = max(results["save_state fenced"], results[f"save_state fenced x{concurrency}"])
        print(
            f"{name:<11} => one leader can evaluate ~{best * INTERVAL:,.0f} policies per "
            f"{INTERVAL:.0f} s interval (one fenced save_state each, store alone; "
            f"{best * INTERVAL / 2:,.0f} at 50% store headroom)"
        )
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--ops", type=int, default=2000, help="operations per row")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--policies", type=int, default=1000, help="distinct policy rows")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-pool", type=int, default=4, help="PostgreSQL pool max size")
    args = parser.parse_args()

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
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
