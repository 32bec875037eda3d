"""A real Prometheus server for tests: the Debian `prometheus` binary on a free loopback port,
with a config written here, its storage in a temporary folder, stopped on the way out.

`prometheus_server(...)` skips locally and fails under CI (`tests.services.require`) when
the binary is missing, and yields once `ready_query` answers with data (the first scrape of
the targets the test needs). Used by the source tests (tests/sources/conftest.py) and the
llm-slo end-to-end test (tests/runtime/test_runtime_e2e_slo.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.services import free_port, require


def _wait_for_data(
    url: str, query: str, auth: tuple[str, str] | None, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 45
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
    raise RuntimeError(f"prometheus did not scrape its targets in time ({query}): {last}")


@contextmanager
def prometheus_server(
    scrape_configs: str,
    ready_query: str,
    *,
    interval: str = "1s",
    web_config: str | None = None,
    auth: tuple[str, str] | None = None,
) -> Iterator[str]:
    """Prometheus scraping `scrape_configs` (the YAML list under `scrape_configs:`) every
    `interval`; `web_config`: its web config file's text (basic auth: pass `auth` too so the
    readiness query can log in). Yields its URL."""
    binary = shutil.which("prometheus")
    require(binary is not None, "the prometheus binary (Debian package prometheus)")
    assert binary is not None
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="autoscaler-prom-"))
    (workdir / "prometheus.yml").write_text(
        f"global: {{scrape_interval: {interval}, evaluation_interval: {interval}}}\n"
        f"scrape_configs:\n{scrape_configs}"
    )
    args = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    if web_config is not None:
        (workdir / "web.yml").write_text(web_config)
        args.append(f"--web.config.file={workdir / 'web.yml'}")
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_data(url, ready_query, auth, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
