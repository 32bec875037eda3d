"""Fixtures for source tests: a real Prometheus server scraping a prometheus-client exporter.

The server is the Debian `prometheus` binary, started once per session on a free port with a
temporary config and storage dir, basic auth on (web config with a bcrypt hash), scraping a
test exporter every second. The fixture waits until the target is up and a query returns the
exporter's data, and stops the server at the end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from tests.services import free_port, require
from tests.sources.expositions import vllm_registry

PROM_USER = "autoscaler"
PROM_PASSWORD = "promql-pass"
# bcrypt (cost 4) of PROM_PASSWORD, made with crypt.crypt(PROM_PASSWORD, mksalt(METHOD_BLOWFISH)).
PROM_PASSWORD_HASH = "$2b$04$HjHGf1CxctyxFaYewRx.0.Mn2tea4uoQL/s51.Q9/5IbsxdOLmNnO"
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_OBSERVATIONS = (0.05, 0.2, 0.2, 0.3, 0.4, 0.7, 0.9, 1.2, 3.0, 7.0)


@dataclass
class PrometheusServer:
    url: str
    exporter_url: str
    auth: tuple[str, str]


def _wait_for_data(url: str, auth: tuple[str, str], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 45
    query = 'count(test_queue_depth) and on() (up{job="exporter"} == 1)'
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}")
        try:
            answer = httpx.get(f"{url}/api/v1/query", params={"query": query}, auth=auth, timeout=2)
            body = answer.json()
            if body.get("status") == "success" and body["data"]["result"]:
                return
            last = json.dumps(body)[:200]
        except (httpx.HTTPError, ValueError) as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise RuntimeError(f"prometheus did not scrape the exporter in time: {last}")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def serve_text_exposition(registry: CollectorRegistry, port: int) -> WSGIServer:
    """Serve `registry` always in the classic text format.

    prometheus-client 0.26 answers any Accept that mentions OpenMetrics with OpenMetrics
    "underscores" escaping, which rewrites `vllm:x` to `vllm_x` in sample lines but not in
    HELP/TYPE; Prometheus 2.42 asks for OpenMetrics and cannot be told otherwise, so the
    exporter drops the Accept header and serves text, as vLLM behind an older client does."""
    app = make_wsgi_app(registry)

    def text_only(environ: dict[str, Any], start_response: Any) -> Any:
        environ.pop("HTTP_ACCEPT", None)
        return app(environ, start_response)

    server = make_server("127.0.0.1", port, text_only, handler_class=_QuietHandler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


@pytest.fixture(scope="session")
def prometheus_server() -> Iterator[PrometheusServer]:
    binary = shutil.which("prometheus")
    require(binary is not None, "the prometheus binary (Debian package prometheus)")
    assert binary is not None
    # The exporter serves a realistic vLLM exposition too, so PromQL can check our matching
    # and aggregation of the same series.
    registry = vllm_registry(with_process_metrics=False)
    depth = Gauge("test_queue_depth", "Jobs waiting.", ["queue"], registry=registry)
    depth.labels("a").set(5)
    depth.labels("b").set(7)
    Counter("test_requests", "Requests.", registry=registry).inc(42)
    latency = Histogram(
        "test_latency_seconds", "Latency.", buckets=LATENCY_BUCKETS, registry=registry
    )
    for value in LATENCY_OBSERVATIONS:
        latency.observe(value)
    exporter_port = free_port()
    exporter = serve_text_exposition(registry, exporter_port)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="autoscaler-prom-"))
    (workdir / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: exporter\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
    )
    (workdir / "web.yml").write_text(f"basic_auth_users:\n  {PROM_USER}: '{PROM_PASSWORD_HASH}'\n")
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.config.file={workdir / 'web.yml'}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_data(url, (PROM_USER, PROM_PASSWORD), proc)
        yield PrometheusServer(
            url, f"http://127.0.0.1:{exporter_port}/metrics", (PROM_USER, PROM_PASSWORD)
        )
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        exporter.shutdown()
        exporter.server_close()
        shutil.rmtree(workdir, ignore_errors=True)
