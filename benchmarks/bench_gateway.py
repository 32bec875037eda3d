"""The gateway's cost, side by side with a direct connection to the same fake upstream.

    .venv/bin/python benchmarks/bench_gateway.py                  # everything, ~1 minute
    .venv/bin/python benchmarks/bench_gateway.py --http h11       # the gateway on h11

Processes: the upstream (a minimal OpenAI-compatible ASGI app: JSON answers with usage, or
SSE with `--tokens` chunks), the gateway (`Gateway` + `serve_gateway`), and
this process as the load generator (a raw HTTP/1.1 keep-alive client on asyncio streams, so
the client's cost is small). The gateway is one process, one event loop: at most one core. Measured:
1. latency added over direct at a fixed open-loop rate (`--rate`, default 200 req/s):
   p50 / p99 direct and through the gateway, non-streaming and streaming;
2. time to first byte (first SSE chunk) through the gateway vs direct;
3. the most non-streaming requests per second one gateway process sustains (closed loop,
   `--concurrency` connections);
4. time from the first request at zero to the provider's create call: the NeevCloud
   simulator, a real `autoscaler run` with a gateway section whose policy evaluates only every
   60 s (so only the gateway's activation can be that fast), `--zero-runs` times.
Figures are printed, not asserted. Targets (issue 10): added p50 <= 1 ms, p99 <= 5 ms at
200 req/s; >= 1,500 req/s on one core; create within 1 s of the first held request, p99.

The stack was chosen with this script: uvicorn with httptools against h11 (`--http`), and the
upstream client, httpx (one pool: ~300 req/s; 16 pools: ~950) against the small httptools
client in `autoscaler/gateway/client.py` (~2,700), all on the same loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KEY = "sk-bench-key"
BODY = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()
STREAM_BODY = json.dumps(
    {
        "model": "chat",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
).encode()


# --- the upstream ---------------------------------------------------------------------------


def upstream_app(tokens: int) -> Any:
    answer = json.dumps(
        {
            "object": "chat.completion",
            "choices": [{"message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    ).encode()
    chunk = b'data: {"choices":[{"delta":{"content":"t"}}]}\n\n'
    last = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":%d}}\n\n' % tokens

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        if b'"stream": true' not in body and b'"stream":true' not in body:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(answer)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": answer})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for _ in range(tokens):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0.002)  # a token every 2 ms
        await send({"type": "http.response.body", "body": last + b"data: [DONE]\n\n"})

    return app


def run_upstream(port: int, tokens: int, http: str) -> None:
    import uvicorn

    uvicorn.run(
        upstream_app(tokens),
        host="127.0.0.1",
        port=port,
        log_level="error",
        http=http,
        lifespan="off",
        access_log=False,
    )


def run_gateway(port: int, upstream_port: int, http: str) -> None:
    import anyio
    import structlog

    from autoscaler.gateway.auth import ApiKeys
    from autoscaler.gateway.routes import RouteTable
    from autoscaler.gateway.service import Gateway
    from autoscaler.policy.model import (
        Deployment,
        GatewayConfig,
        GatewaySource,
        Metric,
        Policy,
        PolicyGateway,
        Replicas,
        Target,
    )
    from autoscaler.providers.base import InferenceRoute
    from autoscaler.runtime import gateway_wiring
    from autoscaler.secrets import Secret

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    policy = Policy(
        name="p",
        deployment=Deployment(provider="sim", name="d"),
        replicas=Replicas(0, 1),
        metrics=(Metric("m", GatewaySource(signal="held", models=("chat",)), Target("value", 1)),),
        gateway=PolicyGateway(models=("chat",)),
    )
    route = InferenceRoute(f"http://127.0.0.1:{upstream_port}/v1", {"Authorization": "Bearer up"})

    class Ready:
        async def resolve(self, policy: str, *, fresh: bool) -> InferenceRoute:
            return route

    config = GatewayConfig(max_connections=4096)
    gateway = Gateway(config, RouteTable.build([policy], config), Ready(), ApiKeys([Secret(KEY)]))
    serve = gateway_wiring.serve_gateway
    if http == "h11":
        anyio.run(lambda: serve(gateway, f"127.0.0.1:{port}", http="h11"))
    else:
        anyio.run(serve, gateway, f"127.0.0.1:{port}")


# --- the load generator: raw HTTP/1.1 keep-alive ----------------------------------------------


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def request(self, body: bytes) -> tuple[float, float]:
        """(time to first body byte, total) in seconds."""
        started = time.perf_counter()
        self.writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer "
            + KEY.encode()
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n")[0].decode())
        lower = head.lower()
        first: float | None = None
        if b"content-length:" in lower:
            n = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
            await self.reader.readexactly(n)
            first = time.perf_counter()
        else:  # chunked
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                if first is None and size:
                    first = time.perf_counter()
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        end = time.perf_counter()
        return (first or end) - started, end - started


async def fixed_rate(
    port: int, body: bytes, rate: float, seconds: float
) -> list[tuple[float, float]]:
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await Conn.open(port))
    results: list[tuple[float, float]] = []

    async def one() -> None:
        conn = await pool.get()
        try:
            results.append(await conn.request(body))
        finally:
            pool.put_nowait(conn)

    tasks = []
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait().writer.close()
    return results


async def closed_loop(port: int, concurrency: int, seconds: float) -> float:
    conns = [await Conn.open(port) for _ in range(concurrency)]
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(conn: Conn) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await conn.request(BODY)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.writer.close()
    return done / elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(x: float) -> str:
    return f"{x * 1000:7.2f}"


async def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


# --- time to the create call -------------------------------------------------------------------


def time_to_create(runs: int, separate: bool = False) -> list[float]:
    """Seconds from sending the first request at zero to the simulator receiving the create;
    `separate`: the gateway as its own process, activating through the daemon's admin API."""
    import subprocess
    import tempfile

    import httpx

    from tests.gateway.test_gateway_daemon import _config, _gateway_section
    from tests.runtime.daemon_support import PYTHON, sim_server, wait_for
    from tests.services import free_port

    out: list[float] = []
    with sim_server(provision_seconds=0.3) as sim, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "d"
        folder.mkdir()
        gw_port, http_port = free_port(), free_port()
        section = _gateway_section(gw_port, folder)
        config = _config(folder, sim.url, http_port=http_port, gateway="" if separate else section)
        log = open(Path(tmp) / "daemon.log", "wb")  # noqa: SIM115
        processes = [
            subprocess.Popen(
                [PYTHON, "-m", "autoscaler", "run", "--config", str(config)],
                cwd=str(REPO),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        ]
        if separate:
            g_folder = Path(tmp) / "g"
            g_config = _config(
                g_folder,
                sim.url,
                http_port=free_port(),
                gateway=_gateway_section(gw_port, g_folder, [f"http://127.0.0.1:{http_port}"]),
            )
            processes.append(
                subprocess.Popen(
                    [PYTHON, "-m", "autoscaler", "gateway", "--config", str(g_config)],
                    cwd=str(REPO),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        try:
            gw = f"http://127.0.0.1:{gw_port}"

            def up() -> bool:
                try:
                    return httpx.get(gw + "/healthz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, 60, "gateway up")

            def listed() -> list[Any]:
                items = httpx.get(
                    f"{sim.url}/api/v1beta1/orgs/org-t/projects/prj-t/aimodels",
                    headers={"Authorization": "Bearer sim-token-for-tests"},
                    timeout=10,
                ).json()["items"]
                return [i for i in items if i["name"] == "chat-gw"]

            for _ in range(runs):
                wait_for(lambda: not listed(), 60, "at zero (gone from the provider's list)")
                sent = time.time()
                r = httpx.post(
                    gw + "/v1/chat/completions",
                    json={
                        "model": "chat",
                        "messages": [{"role": "user", "content": "x"}],
                        "max_tokens": 2,
                    },
                    headers={"Authorization": "Bearer " + "sk-test-client-key"},
                    timeout=120,
                )
                assert r.status_code == 200, r.text
                created = sim.current("chat-gw")[0]["created_at"]
                out.append(created - sent)
                dep = sim.current("chat-gw")[0]
                httpx.delete(
                    f"{sim.url}/api/v1beta1/orgs/org-t/projects/prj-t/aimodels/{dep['id']}",
                    headers={"Authorization": "Bearer sim-token-for-tests"},
                    timeout=10,
                )
        finally:
            for process in processes:
                process.terminate()
                process.wait(20)
            if os.environ.get("BENCH_SHOW_LOG"):
                print((Path(tmp) / "daemon.log").read_text()[-6000:])
    return out


# --- main -------------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, up_port: int, gw_port: int) -> None:
    await wait_port(up_port)
    await wait_port(gw_port)
    await fixed_rate(gw_port, BODY, 100, 1)  # warm both paths
    await fixed_rate(up_port, BODY, 100, 1)
    print(f"fixed rate {args.rate:g} req/s for {args.seconds:g} s, 32 keep-alive connections")
    print("  kind        path      p50 ms   p99 ms   ttfb p50  ttfb p99")
    for kind, body in (("json", BODY), ("stream", STREAM_BODY)):
        direct = await fixed_rate(up_port, body, args.rate, args.seconds)
        through = await fixed_rate(gw_port, body, args.rate, args.seconds)
        rows = {}
        for name, res in (("direct", direct), ("gateway", through)):
            totals = [t for _, t in res]
            firsts = [f for f, _ in res]
            rows[name] = (pct(totals, 0.5), pct(totals, 0.99), pct(firsts, 0.5), pct(firsts, 0.99))
            r = rows[name]
            print(f"  {kind:10s}  {name:8s} {ms(r[0])}  {ms(r[1])}  {ms(r[2])}  {ms(r[3])}")
        d, g = rows["direct"], rows["gateway"]
        print(
            f"  {kind:10s}  added    {ms(g[0] - d[0])}  {ms(g[1] - d[1])}  "
            f"{ms(g[2] - d[2])}  {ms(g[3] - d[3])}"
        )
    for c in (args.concurrency,):
        rps = await closed_loop(gw_port, c, args.seconds)
        direct = await closed_loop(up_port, c, args.seconds)
        print(
            f"most non-streaming req/s, {c} connections, gateway on one core: {rps:,.0f} "
            f"(upstream alone: {direct:,.0f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--http", choices=("h11", "httptools"), default="httptools")
    parser.add_argument("--zero-runs", type=int, default=5)
    args = parser.parse_args()
    from tests.services import free_port

    up_port, gw_port = free_port(), free_port()
    ctx = mp.get_context("spawn")
    up = ctx.Process(target=run_upstream, args=(up_port, args.tokens, "httptools"), daemon=True)
    gw = ctx.Process(target=run_gateway, args=(gw_port, up_port, args.http), daemon=True)
    up.start()
    gw.start()
    print(
        f"gateway server: uvicorn ({args.http}), raw ASGI app; "
        "upstream client: autoscaler.gateway.client (httptools)"
    )
    try:
        asyncio.run(measure(args, up_port, gw_port))
    finally:
        gw.terminate()
        up.terminate()
    if args.zero_runs:
        for separate in (False, True):
            waits = time_to_create(args.zero_runs, separate)
            where = "separate gateway process" if separate else "gateway in the daemon"
            print(
                f"first request at zero -> create call, {where} ({len(waits)} runs): "
                f"p50 {statistics.median(waits) * 1000:.0f} ms, "
                f"p99 {pct(waits, 0.99) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
