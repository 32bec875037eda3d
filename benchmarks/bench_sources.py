"""Reads per second of each metric source against local servers, and exposition parse time.

    .venv/bin/python benchmarks/bench_sources.py [--seconds 1.5]

Each source is read sequentially (as the daemon does: one read per metric per interval) for
`--seconds`; servers: a local HTTP server serving the 544-line vLLM fixture (prometheus), a
`prometheus` binary started here on a free port (promql), the machine's Redis 6379, RabbitMQ 5672
and NATS 4222, and a local HTTP server for http_json. A missing server prints "skipped".
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autoscaler.policy.model import (  # noqa: E402
    HttpJsonSource,
    MetricSource,
    NatsSource,
    PrometheusSource,
    PromQLSource,
    RabbitMQSource,
    RedisSource,
)
from autoscaler.sources.exposition import Selector, parse_exposition, select  # noqa: E402
from autoscaler.sources.registry import build_source  # noqa: E402
from tests.services import free_port, port_open  # noqa: E402
from tests.sources.httpserver import Reply, serving  # noqa: E402

FIXTURE = (REPO / "tests" / "sources" / "fixtures" / "vllm_metrics.txt").read_text()


async def reads_per_second(spec: MetricSource, seconds: float) -> tuple[float, float]:
    source = build_source(spec, name="bench")
    value = await source.read()  # connect / warm up
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        value = await source.read()
        count += 1
    elapsed = time.perf_counter() - started
    await source.aclose()
    return count / elapsed, value


def start_prometheus() -> tuple[subprocess.Popen[bytes], str, Path] | None:
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-prom-"))
    (workdir / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, url, workdir
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    return None


async def setup_rabbitmq() -> tuple[str, Callable[[], Awaitable[None]]]:
    import aio_pika

    name = f"bench-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    channel = await connection.channel()
    await channel.declare_queue(name, auto_delete=False)

    async def cleanup() -> None:
        await channel.queue_delete(name)
        await connection.close()

    return name, cleanup


async def setup_nats() -> tuple[str, Callable[[], Awaitable[None]]]:
    import nats
    from nats.js.api import ConsumerConfig

    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    stream = f"BENCH_{uuid.uuid4().hex[:8].upper()}"
    await js.add_stream(name=stream, subjects=[stream.lower()])
    await js.add_consumer(stream, ConsumerConfig(durable_name="w"))

    async def cleanup() -> None:
        await js.delete_stream(stream)
        await nc.close()

    return stream, cleanup


def parse_timing(text: str, content_type: str, only: bool, rounds: int = 100) -> float:
    """Seconds per parse+select; `only`: the source's path (only the family's lines)."""
    metric = "vllm:num_requests_waiting"
    selector = Selector.build(metric, {}, {})
    started = time.perf_counter()
    for _ in range(rounds):
        select(parse_exposition(text, content_type, metric if only else None), selector)
    return (time.perf_counter() - started) / rounds


async def main(seconds: float) -> None:
    rows: list[tuple[str, str]] = []

    def report(name: str, rate: float | None, note: str = "") -> None:
        shown = f"{rate:10.0f} reads/s" if rate is not None else "   skipped"
        rows.append((name, shown + (f"  {note}" if note else "")))
        print(f"{name:<12} {rows[-1][1]}", flush=True)

    with serving(metrics=Reply(FIXTURE), stats=Reply(json.dumps({"q": {"depth": 3}}))) as srv:
        rate, _ = await reads_per_second(
            PrometheusSource(urls=(srv.url(),), metric="vllm:num_requests_waiting"), seconds
        )
        report("prometheus", rate, f"(544-line vLLM exposition, {len(FIXTURE)} bytes)")
        rate, _ = await reads_per_second(
            HttpJsonSource(url=srv.url("/stats"), path="q.depth"), seconds
        )
        report("http_json", rate)

    started = start_prometheus()
    if started is None:
        report("promql", None, "(no prometheus binary)")
    else:
        proc, url, workdir = started
        try:
            rate, _ = await reads_per_second(PromQLSource(url=url, query="sum(vector(3))"), seconds)
            report("promql", rate, "(sum(vector(3)) on a local prometheus)")
        finally:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(workdir, ignore_errors=True)

    if port_open("127.0.0.1", 6379):
        rate, _ = await reads_per_second(
            RedisSource(url="redis://127.0.0.1:6379/0", key=f"bench:{uuid.uuid4().hex}"), seconds
        )
        report("redis", rate, "(LLEN)")
    else:
        report("redis", None)

    if port_open("127.0.0.1", 5672):
        queue, cleanup = await setup_rabbitmq()
        try:
            rate, _ = await reads_per_second(
                RabbitMQSource(url="amqp://guest:guest@127.0.0.1:5672/", queue=queue), seconds
            )
            report("rabbitmq", rate, "(passive queue.declare)")
        finally:
            await cleanup()
    else:
        report("rabbitmq", None)

    if port_open("127.0.0.1", 4222):
        stream, cleanup = await setup_nats()
        try:
            rate, _ = await reads_per_second(
                NatsSource(url="nats://127.0.0.1:4222", stream=stream, consumer="w"), seconds
            )
            report("nats", rate, "(JetStream consumer info)")
        finally:
            await cleanup()
    else:
        report("nats", None)

    from tests.sources.expositions import vllm_exposition

    om = vllm_exposition(openmetrics=True)
    text_type, om_type = "text/plain; version=0.0.4", "application/openmetrics-text; version=1.0.0"
    print(
        "parse 544-line vLLM exposition (whole, prometheus-client): "
        f"{parse_timing(FIXTURE, text_type, False) * 1000:.2f} ms text, "
        f"{parse_timing(om, om_type, False) * 1000:.2f} ms OpenMetrics"
    )
    print(
        "parse+select as the source does (one family's lines): "
        f"{parse_timing(FIXTURE, text_type, True) * 1000:.2f} ms text, "
        f"{parse_timing(om, om_type, True) * 1000:.2f} ms OpenMetrics"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per source")
    anyio.run(main, parser.parse_args().seconds)
