"""Benchmark: one `autoscaler run` process with many policies at a 15 s interval.

Starts the NeevCloud simulator server (`autoscaler sim-provider`, a separate process),
pre-creates one deployment per policy, serves one shared Prometheus exposition from this
process (every policy scrapes it: the "one gateway /metrics" layout), starts the daemon as a
subprocess and measures over a window after the start-up spread:
- p50 / p99 evaluation lag (actual start - due time), from the daemon's own
  `autoscaler_evaluation_lag_seconds` histogram (the delta over the window, interpolated
  within buckets, so the figure is bounded by bucket edges 0.1/0.25/0.5/1.0 s);
- CPU share of the daemon process (utime+stime over the window / wall time, 1.0 = one core);
- peak RSS of the daemon process.

Usage:
    .venv/bin/python benchmarks/bench_daemon.py --policies 1000 10000 --duration 75
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path

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


def write_files(folder: Path, count: int, sim_port: int, metrics_port: int, http_port: int) -> Path:
    spec = json.dumps(SPEC)
    docs = []
    for i in range(count):
        docs.append(
            f"""name: {policy_name(i)}
deployment: {{provider: sim, name: {policy_name(i)}, create: {spec}}}
replicas: {{min: 1, max: 3}}
interval: 15s
metrics:
  - name: waiting
    source: {{type: prometheus, url: "http://127.0.0.1:{metrics_port}/metrics",
              metric: "vllm:num_requests_waiting", timeout: 5s}}
    target: {{type: average_value, value: 5}}
"""
        )
    # Files of 1,000 policies: the loader refuses single files above 4 MB.
    pol_dir = folder / "policies"
    pol_dir.mkdir()
    for start in range(0, count, 1000):
        (pol_dir / f"part-{start // 1000:03d}.yaml").write_text(
            "---\n".join(docs[start : start + 1000])
        )
    (folder / "token").write_text(TOKEN)
    config = folder / "config.yaml"
    config.write_text(
        f"""policies: {pol_dir}
providers:
  sim:
    type: neevcloud
    base_url: http://127.0.0.1:{sim_port}
    org_id: org-b
    project_id: prj-b
    token: {{file: {folder / "token"}}}
state:
  url: sqlite:///{folder / "state.db"}
http:
  listen: 127.0.0.1:{http_port}
log:
  format: json
  level: warning
"""
    )
    return config


def run_one(count: int, duration: float, warmup: float) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-daemon-{count}-"))
    sim_port, http_port = free_port(), free_port()
    exposition, metrics_port = serve_exposition()
    sim = subprocess.Popen(
        [PYTHON, "-m", "autoscaler", "sim-provider", "--provider", "neevcloud",
         "--port", str(sim_port), "--token", TOKEN, "--provision-seconds", "0"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    daemon = None
    try:
        wait_port(sim_port)
        started = time.monotonic()
        asyncio.run(precreate(sim_port, count))
        print(f"  {count} deployments created in {time.monotonic() - started:.1f}s", flush=True)
        config = write_files(folder, count, sim_port, metrics_port, http_port)
        log = open(folder / "daemon.log", "wb")  # noqa: SIM115
        daemon = subprocess.Popen(
            [PYTHON, "-m", "autoscaler", "run", "--config", str(config), "--no-watch"],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_port(http_port, 300, daemon)
        print(f"  daemon up after {time.monotonic() - started:.1f}s; warming up", flush=True)
        time.sleep(warmup)
        before = lag_buckets(http_port)
        cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
        peak = rss_mb(daemon.pid)
        while time.monotonic() - t0 < duration:
            time.sleep(1)
            peak = max(peak, rss_mb(daemon.pid))
        cpu1, t1 = cpu_seconds(daemon.pid), time.monotonic()
        after = lag_buckets(http_port)
        delta = {e: after[e] - before.get(e, 0.0) for e in sorted(after)}
        print("  lag histogram (cumulative, over the window):", delta, flush=True)
        p99, evaluations = quantile(before, after, 0.99)
        p50, _ = quantile(before, after, 0.50)
        return {
            "policies": count,
            "window_s": round(t1 - t0, 1),
            "evaluations": evaluations,
            "evaluations_per_s": round(evaluations / (t1 - t0), 1),
            "lag_p50_s": round(p50, 4),
            "lag_p99_s": round(p99, 4),
            "cpu_share": round((cpu1 - cpu0) / (t1 - t0), 3),
            "rss_peak_mb": round(peak, 1),
        }
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        sim.terminate()
        sim.wait(30)
        exposition.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--duration", type=float, default=75.0, help="measured window, s")
    parser.add_argument("--warmup", type=float, default=20.0, help="start-up spread to skip, s")
    args = parser.parse_args()
    results = []
    for count in args.policies:
        print(f"== {count} policies", flush=True)
        result = run_one(count, args.duration, args.warmup)
        print(json.dumps(result), flush=True)
        results.append(result)
    print("\npolicies  evals/s  lag p50  lag p99  cpu(1=core)  rss peak MB")
    for r in results:
        print(
            f"{r['policies']:>8}  {r['evaluations_per_s']:>7}  {r['lag_p50_s']:>7}  "
            f"{r['lag_p99_s']:>7}  {r['cpu_share']:>11}  {r['rss_peak_mb']:>11}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
