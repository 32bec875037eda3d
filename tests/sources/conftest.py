"""Fixtures for source tests: a real Prometheus server scraping a prometheus-client exporter.

The server is the Debian `prometheus` binary (tests/promserver.py), started once per session on
a free port with a temporary config and storage dir, basic auth on (web config with a bcrypt
hash), scraping a test exporter every second. The fixture waits until the target is up and a
query returns the exporter's data, and stops the server at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from tests.promserver import prometheus_server as run_prometheus
from tests.services import free_port
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
    auth = (PROM_USER, PROM_PASSWORD)
    try:
        with run_prometheus(
            "  - job_name: exporter\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n",
            'count(test_queue_depth) and on() (up{job="exporter"} == 1)',
            web_config=f"basic_auth_users:\n  {PROM_USER}: '{PROM_PASSWORD_HASH}'\n",
            auth=auth,
        ) as url:
            yield PrometheusServer(url, f"http://127.0.0.1:{exporter_port}/metrics", auth)
    finally:
        exporter.shutdown()
        exporter.server_close()
