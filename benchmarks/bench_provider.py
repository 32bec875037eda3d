"""Scale calls per second through a provider client against the local simulator server.

Starts `autoscaler sim-provider` (uvicorn) in a subprocess, creates a few deployments, then
runs N concurrent callers issuing `scale` calls through ONE client (one httpx connection pool,
as the daemon has per profile). Prints calls/s and p50/p99 latency per call.

    .venv/bin/python benchmarks/bench_provider.py [--provider neevcloud] [--callers 100]
        [--calls 3000] [--deployments 10]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import statistics
import subprocess
import sys
import time

from autoscaler.policy.model import ProviderProfile
from autoscaler.providers.registry import build_provider

SPECS = {
    "neevcloud": {
        "catalog_id": "meta-llama-Llama-3.1-8B-Instruct",
        "region": "in-west-1",
        "gpu_config_id": "h100-80gb",
        "gpu_count": 1,
        "plan_id": "ondemand-h100",
    },
    "netmind": {
        "flavor_id": "69475e82e81c4dd6be3467e2ca374e0c",
        "deploy_metadata": {"image_url": "vllm/vllm-openai", "port": 8000, "gpu_num": 1},
    },
    "nebius": {
        "model_name": "gpt-oss-120b",
        "flavor_name": "base",
        "gpu_type": "gpu-h100-sxm",
        "gpu_count": 1,
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(url: str, token: str, kind: str, callers: int, calls: int, count: int) -> None:
    profile = ProviderProfile(
        name="bench",
        type=kind,
        base_url=url,
        org_id="org-bench",
        project_id="prj-bench",
        token=token,
        timeout=30.0,
    )
    provider = build_provider(profile)
    deployments = [await provider.create(f"bench-{i:02d}", SPECS[kind], 1) for i in range(count)]
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(calls):
        queue.put_nowait(i)

    async def caller() -> None:
        nonlocal failures
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            try:
                await provider.scale(deployments[i % count], 1 + i % 4)
            except Exception:
                failures += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    await provider.aclose()
    print(
        f"provider={kind} callers={callers} calls={calls} deployments={count} failures={failures}"
    )
    print(f"throughput: {calls / elapsed:.0f} scale calls/s over {elapsed:.2f} s")
    print(
        f"latency: p50 {percentile(latencies, 0.50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
        f"mean {statistics.fmean(latencies) * 1000:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider", default="neevcloud", choices=["neevcloud", "netmind", "nebius"]
    )
    parser.add_argument("--callers", type=int, default=100)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--deployments", type=int, default=10)
    args = parser.parse_args()
    port, token = free_port(), secrets.token_urlsafe(16)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autoscaler",
            "sim-provider",
            "--provider",
            args.provider,
            "--port",
            str(port),
            "--token",
            token,
            "--provision-seconds",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().split(" at ")[1]
        asyncio.run(bench(url, token, args.provider, args.callers, args.calls, args.deployments))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
