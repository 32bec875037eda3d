"""A running daemon and its providers (issue 14 §4, §5; issue 12 §2): a 429 with a long
Retry-After keeps the daemon away from the provider across evaluations and /status says when
the next call may go; a provider that refuses our credentials (401/403) makes /readyz 503
naming the profile, the credential reference and the policies, and the log says what to check;
both clear when the provider answers again."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.runtime.daemon_support import (
    TOKEN,
    policy_yaml,
    sim_server,
    start_daemon_process,
    wait_for,
    write_config,
)
from tests.services import free_port, require_tcp

pytestmark = pytest.mark.slow


def _get(base: str, path: str) -> httpx.Response | None:
    try:
        return httpx.get(f"{base}{path}", timeout=3)
    except httpx.HTTPError:
        return None


def _provider_requests(base: str) -> float:
    response = _get(base, "/metrics")
    assert response is not None
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        if family.name == "autoscaler_provider_requests":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def test_retry_after_keeps_the_daemon_away_across_evaluations(tmp_path: Path) -> None:
    require_tcp("Redis", 6379)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with sim_server(provision_seconds=0.2) as sim:
        sim.faults(rate_limit_rate=1.0, retry_after=120)
        config = write_config(
            tmp_path,
            sim.url,
            {"web": policy_yaml("web-429", redis_key=f"t:{uuid.uuid4().hex}", min_replicas=1)},
            http_port=port,
        )
        proc = start_daemon_process(config, log=tmp_path / "daemon.log")
        try:

            def evaluations() -> int:
                r = _get(base, "/status")
                if r is None or r.status_code != 200:
                    return 0
                return int(r.json()["policies"].get("web-429", {}).get("evaluations", 0))

            wait_for(lambda: evaluations() >= 2 or proc.poll() is not None, 60, "evaluations")
            first = _provider_requests(base)
            seen = evaluations()
            wait_for(lambda: evaluations() >= seen + 10, 60, "ten more evaluations")
            # The 0.5 s interval evaluated 10+ times; the provider saw no new request.
            assert _provider_requests(base) == first
            assert first <= 2  # the one 429 (and at most a login or retry before the gate)
            status = _get(base, "/status")
            assert status is not None
            sim_status = status.json()["providers"]["sim"]
            assert sim_status["next_call_at"].endswith("Z"), sim_status
            assert sim_status["last_error"]["status"] == 429
            assert sim_status["policies"] == ["web-429"]
        finally:
            proc.terminate()
            proc.wait(30)


def test_refused_credentials_make_readyz_name_the_provider(tmp_path: Path) -> None:
    require_tcp("Redis", 6379)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "daemon.log"
    with sim_server(provision_seconds=0.2) as sim:
        config = write_config(
            tmp_path,
            sim.url,
            {"web": policy_yaml("web-401", redis_key=f"t:{uuid.uuid4().hex}", min_replicas=1)},
            http_port=port,
        )
        token_file = tmp_path / "token"
        token_file.write_text("revoked-token-value\n")
        proc = start_daemon_process(config, log=log)
        try:

            def readyz() -> httpx.Response | None:
                return _get(base, "/readyz")

            def refused() -> Any:
                r = readyz()
                if r is None or r.status_code != 503:
                    return proc.poll() is not None
                return any("sim" in p and "401" in p for p in r.json()["problems"])

            wait_for(refused, 60, "/readyz 503 naming the provider")
            assert proc.poll() is None, log.read_text()[-3000:]
            r = readyz()
            assert r is not None
            body = r.json()
            problem = next(p for p in body["problems"] if "sim" in p)
            assert f"file:{token_file}" in problem and "web-401" in problem, problem
            assert body["unauthorized"]["sim"]["policies"] == ["web-401"]
            assert body["role"] == "leader"  # alive and leading, but cannot act on that provider
            status = _get(base, "/status")
            assert status is not None
            assert status.json()["providers"]["sim"]["unauthorized"]["status"] == 401
            events = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
            hints = [e for e in events if e.get("event") == "provider_unauthorized"]
            assert hints and hints[0]["credential"] == f"file:{token_file}", hints
            assert "revoked-token-value" not in log.read_text()
            # Fixed: the provider answers, readiness comes back by itself.
            token_file.write_text(TOKEN)
            wait_for(lambda: (readyz() or httpx.Response(0)).status_code == 200, 60, "ready")
        finally:
            proc.terminate()
            proc.wait(30)
