"""End to end: the shipped `policies/llm-slo.yaml`, run by a real `autoscaler run` daemon,
reading a real Prometheus that scrapes the NeevCloud simulator's fake vLLM.

The policy is the shipped file with only its Prometheus URL, provider profile, interval,
start-up default, replica bounds and concurrency (the fake replica's slots) changed: the same
five queries and the same objective. One deployment, created beforehand at one replica, serves
requests of about 1.05 s (0.1 s prefill, then 19 more tokens at 20/s) on 4 slots a replica;
an open-loop load of 4.5 requests/s is more than one replica's 4 slots can carry (and more
than the p99-within-5-s objective lets one replica take). The daemon must size it from real
readings (`objective_sized`, every signal read) and scale up; once the load stops, back down.

Until the first request finishes, the service time (a ratio of two rates over a minute) and
the observed wait are NaN while the arrival rate is not: those first decisions under load are
sized from the requests in flight and queued (`objective_service_unread`), not read as failed
(no `metrics_missing_no_scale_down`, no `metric_failure_hold`). The minute-long arrival rate
lags the load (it reads well under 1/s after 10 s of 4.5/s): the requests in flight carry the
sizing.

Polls with generous bounds; asserts no durations.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from autoscaler.fakecloud.inference import InferenceSettings
from tests.promserver import prometheus_server
from tests.runtime.daemon_support import (
    PYTHON,
    REPO,
    TOKEN,
    sim_server,
    start_daemon_process,
    wait_for,
    write_config,
)
from tests.services import free_port

pytestmark = pytest.mark.slow

NAME = "llm-slo"
LABEL = f"{NAME}.prj-t.org-t"  # the NeevCloud simulator's inference path for it
SLOTS = 4  # the fake replica's max_num_seqs: the policy's concurrency
RATE = 4.5  # requests/s, each ~1.05 s: ~4.7 Erlangs, more than one replica's 4 slots
UNDER_LOAD = 8  # decisions on two ready replicas before the load stops
SETTINGS = InferenceSettings(max_num_seqs=SLOTS, token_rate=20.0, ttft=0.1)
SIGNALS = ("completions", "service_time", "running", "waiting", "queue_wait_p99")


def _policy(prometheus: str) -> str:
    """policies/llm-slo.yaml with only what this test must change (each edit applied once)."""
    text = (REPO / "policies" / "llm-slo.yaml").read_text()
    edits = [
        ("url: http://prometheus.internal:9090", f"url: {prometheus}", 5),
        ("provider: neevcloud-prod", "provider: sim", 1),
        ("interval: 5s", "interval: 1s", 1),
        ("  max: 64", "  max: 3", 1),
        ("concurrency: 16", f"concurrency: {SLOTS}", 1),
        ("  quantile: 0.99\n", "  quantile: 0.99\n  startup: 5s\n", 1),
    ]
    for old, new, times in edits:
        assert text.count(old) == times, old
        text = text.replace(old, new)
    return text


class Load:
    """Open-loop chat requests at `rate` per second from a thread, until `stop()`."""

    def __init__(self, url: str, model: str, rate: float) -> None:
        self.url, self.model, self.rate = url, model, rate
        self.answers: Counter[str] = Counter()
        self.done = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _one(self, client: httpx.AsyncClient) -> None:
        body = {"model": self.model, "messages": [{"role": "user", "content": "hi"}]}
        try:
            r = await client.post(self.url, json={**body, "max_tokens": 20})
            self.answers[str(r.status_code)] += 1
        except httpx.HTTPError as exc:
            self.answers[type(exc).__name__] += 1

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer sk-nc-{TOKEN}"}
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
        async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as client:
            tasks: set[asyncio.Task[None]] = set()
            due = time.monotonic()
            while not self.done.is_set():
                task = asyncio.create_task(self._one(client))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                due += 1 / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            await asyncio.gather(*tasks)

    def start(self) -> Load:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.done.set()
        self.thread.join(150)


def _status(http: str) -> dict[str, Any]:
    try:
        body = httpx.get(f"{http}/status", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return body.get("policies", {}).get(NAME) or {}  # type: ignore[no-any-return]


def _history(http: str) -> list[dict[str, Any]]:
    """Every decision the daemon recorded (`autoscaler history --decisions`), oldest first."""
    out = subprocess.run(
        [PYTHON, "-m", "autoscaler", "history", NAME, "--decisions", "--url", http],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_llm_slo_policy_scales_up_on_vllm_load_and_back_down(tmp_path: Path) -> None:
    """The simulator with one ready replica, Prometheus scraping its vLLM page every second,
    the daemon on the policy; then the scenario and the recorded decisions."""
    with sim_server(provision_seconds=1.0, inference=SETTINGS) as sim:
        sim.create(NAME)
        wait_for(lambda: (sim.current(NAME) or [{}])[0].get("status") == "ready", 30, "ready")
        scrape = (
            "  - job_name: vllm\n"
            f"    metrics_path: /inference/{LABEL}/metrics\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{sim.port}']}}]\n"
        )
        ready = 'vllm:num_requests_running and on() (up{job="vllm"} == 1)'
        with prometheus_server(scrape, ready) as prometheus:
            port = free_port()
            http = f"http://127.0.0.1:{port}"
            config = write_config(tmp_path, sim.url, {NAME: _policy(prometheus)}, http_port=port)
            daemon = start_daemon_process(config, log=tmp_path / "daemon.log")
            history: list[dict[str, Any]] = []
            try:
                started, stopped = _scenario(sim, http)
                history = _history(http)
                _check_history(history, started, stopped)
            except BaseException:
                print((tmp_path / "daemon.log").read_text()[-20000:])
                print(json.dumps(history, indent=1))
                raise
            finally:
                daemon.terminate()
                daemon.wait(30)


def _replicas(sim: Any) -> int:
    found = sim.current(NAME)
    return int(found[0]["replicas"]) if found else 0


def _sized_on_two(http: str) -> int | None:
    """The evaluation count when the last decision was sized by the objective from every
    signal on two or more ready replicas, keeping two or more; else None."""
    status = _status(http)
    decision, seen = status.get("last_decision") or {}, status.get("last_observation") or {}
    metrics = seen.get("metrics", {})
    if (
        "objective_sized" in decision.get("reasons", ())
        and seen.get("ready_replicas", 0) >= 2
        and all(metrics.get(name) is not None for name in SIGNALS)
        and decision.get("replicas", 0) >= 2
    ):
        return int(status["evaluations"])
    return None


def _scenario(sim: Any, http: str) -> tuple[float, float]:
    """Load until the daemon scaled up and then kept two replicas for `UNDER_LOAD` decisions
    sized on them, then none until one replica is left: when the load started and stopped."""
    wait_for(lambda: _status(http).get("evaluations", 0) >= 1, 60, "the daemon's first decision")
    base = f"{sim.url}/inference/{LABEL}/v1"
    key = {"Authorization": f"Bearer sk-nc-{TOKEN}"}
    model = httpx.get(f"{base}/models", headers=key, timeout=10).json()["data"][0]["id"]
    load = Load(f"{base}/chat/completions", model, RATE).start()
    started = time.time()
    try:
        wait_for(lambda: _replicas(sim) >= 2, 90, "a scale up under the load", poll=0.2)
        first = wait_for(lambda: _sized_on_two(http), 90, "a decision sized on 2 ready", poll=0.2)
        wait_for(
            lambda: (_sized_on_two(http) or 0) >= first + UNDER_LOAD,
            90,
            f"{UNDER_LOAD} more decisions sized on 2 ready under the load",
            poll=0.2,
        )
    finally:
        load.stop()
    stopped = time.time()
    assert set(load.answers) == {"200"}, load.answers
    wait_for(lambda: _replicas(sim) == 1, 120, "a scale down once the load stopped", poll=0.2)
    return started, stopped


def _readings(decision: dict[str, Any]) -> tuple[float, float] | None:
    """The arrival rate and service time an objective message was built from."""
    found = re.match(r"objective: ([0-9.e+-]+)/s x ([0-9.e+-]+)s", decision["message"])
    return (float(found[1]), float(found[2])) if found else None


def _check_history(history: list[dict[str, Any]], started: float, stopped: float) -> None:
    """From the first decision sized from a positive arrival rate on: each is sized by the
    objective from real readings (none failed, none kept for missing metrics); one scaled up
    while the load ran, none scaled down under it, one scaled down after it stopped."""
    flowing = [d for d in history if d["t"] >= started]
    for d in flowing:  # the first requests not finished yet are no failed reads
        assert "metric_failure_hold" not in d["reasons"], d
        assert "metrics_missing_no_scale_down" not in d["reasons"], d
        assert "failed" not in d["message"], d
    first = next(i for i, d in enumerate(flowing) if (_readings(d) or (0.0, 0.0))[0] > 0)
    read = flowing[first:]
    for d in read:
        assert "objective_sized" in d["reasons"], d
    ups = [d for d in flowing if d["action"] == "scale" and "scale_up" in d["reasons"]]
    downs = [d for d in read if d["action"] == "scale" and "scale_down" in d["reasons"]]
    assert ups and ups[0]["t"] <= stopped, flowing
    # the first scale-up may come before any request finished, sized from those in flight
    assert {"objective_sized", "objective_service_unread"} & set(ups[0]["reasons"]), ups[0]
    # under the load, once up, the count stays up (the 1 min rate lags; in flight carries it)
    assert not [d for d in downs if ups[0]["t"] < d["t"] <= stopped], read
    assert downs and downs[-1]["t"] > stopped and downs[-1]["replicas"] == 1, read
    for d in (downs[-1],):
        lam, service = _readings(d) or (0.0, 0.0)
        assert lam > 0 and service >= 1.0, d  # 0.1 s prefill + 19 tokens at 20/s, at least
