"""The HTTP side of a real `autoscaler run` process: /healthz, /readyz, /status, /metrics and
the token-protected admin endpoints, over real HTTP, with the NeevCloud simulator."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.runtime.daemon_support import (
    policy_yaml,
    sim_server,
    start_daemon_process,
    wait_for,
    write_config,
)
from tests.services import free_port, require_tcp

ADMIN = "admin-" + uuid.uuid4().hex


def with_admin_token(config: Path, port: int) -> None:
    listen = f"  listen: 127.0.0.1:{port}\n"
    text = config.read_text()
    assert listen in text
    config.write_text(
        text.replace(listen, listen + "  admin_token: {env: AUTOSCALER_ADMIN_TOKEN}\n")
    )


@pytest.mark.slow
def test_endpoints_of_a_running_daemon(tmp_path: Path) -> None:
    require_tcp("Redis", 6379)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with sim_server(provision_seconds=0.2) as sim:
        config = write_config(
            tmp_path,
            sim.url,
            {
                "web": policy_yaml(
                    "web-http", redis_key=f"test:http:{uuid.uuid4().hex}", min_replicas=1
                )
            },
            http_port=port,
        )
        with_admin_token(config, port)
        process = start_daemon_process(
            config, env={"AUTOSCALER_ADMIN_TOKEN": ADMIN}, log=tmp_path / "daemon.log"
        )
        try:

            def ready() -> bool:
                try:
                    return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return process.poll() is not None  # stop waiting if it died

            wait_for(ready, 30, "daemon /readyz 200")
            assert process.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            with httpx.Client(base_url=base, timeout=5) as client:
                assert client.get("/healthz").status_code == 200
                # A single daemon on SQLite always leads; no lease, so no epoch.
                assert client.get("/readyz").json() == {
                    "ready": True,
                    "problems": [],
                    "role": "leader",
                    "epoch": None,
                }
                metrics = client.get("/metrics").text
                assert "autoscaler_is_leader 1.0" in metrics, metrics[:2000]
                # The policy gets evaluated and its deployment created (min 1).
                wait_for(lambda: sim.current("web-http"), 30, "deployment created")
                wait_for(
                    lambda: client.get("/status").json()["policies"]["web-http"]["last_decision"],
                    30,
                    "a decision in /status",
                )
                status = client.get("/status").json()
                assert status["config_loaded"] is True
                web = status["policies"]["web-http"]
                assert web["deployment"] == "web-http" and web["provider"] == "sim"

                families = {
                    f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)
                }
                decisions = families["autoscaler_decisions"].samples
                assert any(s.labels.get("policy") == "web-http" for s in decisions)
                requests = families["autoscaler_provider_requests"].samples
                assert any(
                    s.labels["provider"] == "sim" and s.labels["status"].startswith("2")
                    for s in requests
                    if s.name.endswith("_total")
                )

                pause = "/policies/web-http/pause"
                assert client.post(pause).status_code == 401
                assert (
                    client.post(pause, headers={"Authorization": "Bearer nope"}).status_code == 401
                )
                auth = {"Authorization": f"Bearer {ADMIN}"}
                paused = client.post(pause, headers=auth)
                assert paused.status_code == 200, paused.text
                assert client.get("/status").json()["policies"]["web-http"]["paused"] is True
                assert client.post("/policies/web-http/resume", headers=auth).status_code == 200
                assert client.get("/status").json()["policies"]["web-http"]["paused"] is False
                override = client.post(
                    "/policies/web-http/override",
                    headers=auth,
                    json={"replicas": 2, "duration": "1m"},
                )
                assert override.status_code == 200, override.text
                assert client.get("/status").json()["policies"]["web-http"]["override"]
                too_many = client.post(
                    "/policies/web-http/override",
                    headers=auth,
                    json={"replicas": 99, "duration": 60},
                )
                assert too_many.status_code == 400 and "max" in too_many.json()["error"]
                assert client.post("/policies/nope/pause", headers=auth).status_code == 404
        finally:
            process.terminate()
            assert process.wait(30) == 0
    log = (tmp_path / "daemon.log").read_text()
    assert ADMIN not in log
