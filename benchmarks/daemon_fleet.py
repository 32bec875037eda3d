"""What the daemon benchmarks share: a simulator fleet of pre-created deployments, one
Prometheus exposition every policy scrapes, and measuring a daemon process from outside
(CPU seconds and RSS from /proc, evaluation-lag quantiles from its own /metrics histogram).

Imported by `bench_daemon.py` and `bench_ha.py` (run as scripts: this folder is on sys.path).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TOKEN = "bench-token"
SPEC = {
    "catalog_id": "meta-llama-Llama-3.1-8B-Instruct",
    "region": "in-west-1",
    "gpu_config_id": "h100-80gb",
    "gpu_count": 1,
    "plan_id": "ondemand-h100",
}
EXPOSITION = (
    "# HELP vllm:num_requests_waiting Requests waiting.\n"
    "# TYPE vllm:num_requests_waiting gauge\n"
    'vllm:num_requests_waiting{model_name="m"} 3\n'
)
BUCKET = re.compile(r'^autoscaler_evaluation_lag_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)$')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, bound: float = 60, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode}; see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {bound:g}s")


def serve_exposition() -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = EXPOSITION.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a SIGKILLed daemon resets its connections: expected here, not news

    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def policy_name(i: int) -> str:
    return f"bench-{i:05d}"


async def precreate(sim_port: int, count: int) -> None:
    url = f"http://127.0.0.1:{sim_port}/api/v1beta1/orgs/org-b/projects/prj-b/aimodels"
    limit = asyncio.Semaphore(32)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as client:

        async def one(i: int) -> None:
            async with limit:
                r = await client.post(url, json={"name": policy_name(i), **SPEC}, timeout=30)
                r.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(count)))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def lag_buckets(http_port: int) -> dict[float, float]:
    text = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=60).text
    totals: dict[float, float] = {}
    for line in text.splitlines():
        m = BUCKET.match(line)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            totals[le] = totals.get(le, 0.0) + float(m.group(2))
    return totals


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> tuple[float, int]:
    edges = sorted(after)
    counts = [after[e] - before.get(e, 0.0) for e in edges]
    total = counts[-1] if counts else 0
    if total <= 0:
        return float("nan"), 0
    rank = q * total
    prev_edge, prev_count = 0.0, 0.0
    for edge, cum in zip(edges, counts, strict=True):
        if cum >= rank:
            if edge == float("inf"):
                return prev_edge, int(total)
            span = cum - prev_count
            frac = (rank - prev_count) / span if span else 1.0
            return prev_edge + (edge - prev_edge) * frac, int(total)
        prev_edge, prev_count = edge, cum
    return edges[-1], int(total)
