"""How heavy is the daemon's /metrics at scale: series count, exposition size and the time to
render it, and the memory the Recorder holds, for N policies (each with 2 metric sources,
a few decision reasons and a scale from zero), plus the cost of one Recorder call.

    .venv/bin/python benchmarks/bench_metrics.py [N ...]     (default: 1000 10000)
"""

from __future__ import annotations

import sys
import time
import tracemalloc

from prometheus_client import generate_latest

from autoscaler.runtime.metrics import Metrics, MetricsRegistry


def fill(metrics: Metrics, n: int) -> None:
    for i in range(n):
        p = f"policy-{i:05d}"
        metrics.replicas(p, 3, 2)
        metrics.dry_run(p, False)
        metrics.evaluation(p, 0.012, 0.004)
        for reasons in (
            ("within_tolerance",),
            ("scale_up", "rate_limited_up"),
            ("stabilized_down",),
        ):
            metrics.decision(p, "none" if len(reasons) == 1 else "scale", reasons)
        metrics.scale_from_zero(p, 42.0)
        for metric, kind in (("waiting", "prometheus"), ("backlog", "redis")):
            metrics.source_read(p, metric, kind, 0.003, ok=True)
        metrics.outcome(p, "none", "no_action")
        metrics.outcome(p, "scale", "executed")
        metrics.observed(p, "ready", 2, {"waiting": 7.0, "backlog": 3.0},
                         {"waiting": 5.0, "backlog": 20.0}, 19.0)  # fmt: skip
    for op in ("get", "list", "scale", "create", "delete"):
        metrics.provider_request("neevcloud-prod", op, 200, 0.05)


def main(sizes: list[int]) -> None:
    for n in sizes:
        tracemalloc.start()
        metrics = Metrics()
        assert isinstance(metrics.registry, MetricsRegistry)
        fill(metrics, n)
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        start = time.perf_counter()
        generic = generate_latest(metrics.registry)
        render_generic = time.perf_counter() - start
        start = time.perf_counter()
        snapshot = metrics.registry.snapshot()  # on the event loop
        on_loop = time.perf_counter() - start
        start = time.perf_counter()
        body = metrics.registry.render_snapshot(snapshot)  # in a worker thread
        render = time.perf_counter() - start
        assert len(body.splitlines()) == len(generic.splitlines())
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        calls = 20_000
        start = time.perf_counter()
        for i in range(calls):
            metrics.evaluation(f"policy-{i % n:05d}", 0.01, 0.001)
        per_call = (time.perf_counter() - start) / calls
        print(
            f"policies={n}: series={series} exposition={len(body) / 1e6:.1f} MB "
            f"snapshot on the loop={on_loop * 1000:.0f} ms, render in a thread={render:.2f} s "
            f"(prometheus-client generic path {render_generic:.2f} s) "
            f"recorder_memory={held / 1e6:.0f} MB "
            f"evaluation() call={per_call * 1e6:.1f} us"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000])
