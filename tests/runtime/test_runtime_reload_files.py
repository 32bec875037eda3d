"""Reload of a running `autoscaler run` process: policy files added, broken, fixed and removed
(file watch), and a change applied on SIGHUP; an invalid change is rejected with its errors
logged and the running configuration kept; removing a policy never deletes its deployment.
"""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.runtime.daemon_support import (
    policy_yaml,
    sim_server,
    start_daemon_process,
    wait_for,
    write_config,
)
from tests.services import free_port, require_tcp

pytestmark = pytest.mark.slow


def _status(port: int) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/status", timeout=2)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]


def _policy(name: str, key: str, max_replicas: int = 4) -> str:
    return policy_yaml(
        name, redis_key=key, min_replicas=1, max_replicas=max_replicas, interval="0.3s"
    )


def test_file_changes_and_sighup(tmp_path: Path) -> None:
    require_tcp("Redis", 6379)
    key = f"test:reload:{uuid.uuid4().hex}"
    port = free_port()
    log = tmp_path / "daemon.log"
    with sim_server(provision_seconds=0.2) as sim:
        config = write_config(tmp_path, sim.url, {"alpha": _policy("alpha", key)}, http_port=port)
        proc = start_daemon_process(config, log=log)
        try:
            wait_for(lambda: sim.current("alpha"), 30, "alpha created")
            policies = tmp_path / "policies"

            # Added by a new file -> evaluated (its deployment created) without a restart.
            (policies / "beta.yaml").write_text(_policy("beta", key))
            wait_for(lambda: sim.current("beta"), 30, "beta created after the file appeared")

            # Broken -> rejected: errors logged, both policies keep running.
            (policies / "beta.yaml").write_text(_policy("beta", key).replace("max: 4", "max: -1"))
            rejected = wait_for(
                lambda: (
                    (s := _status(port)) and (s.get("last_reload") or {}).get("ok") is False and s
                ),
                30,
                "invalid change rejected",
            )
            errors = rejected["last_reload"]["errors"]
            assert any("beta.yaml:" in e and "replicas.max" in e for e in errors), errors
            assert set(rejected["policies"]) == {"alpha", "beta"}
            assert "reload_rejected" in log.read_text()

            # Removed -> no longer evaluated; its deployment stays exactly where it is.
            (policies / "beta.yaml").unlink()
            wait_for(
                lambda: (s := _status(port)) and set(s["policies"]) == {"alpha"},
                30,
                "beta removed",
            )
            assert len(sim.current("beta")) == 1
            assert not [r for r in sim.app.state.sim.requests if r["method"] == "DELETE"], (
                "removing a policy must not delete its deployment"
            )

            # SIGHUP applies a change (max 4 -> 2) even when nothing else noticed it.
            (policies / "alpha.yaml").write_text(_policy("alpha", key, max_replicas=2))
            proc.send_signal(signal.SIGHUP)

            def events() -> list[dict[str, Any]]:
                lines = log.read_text().splitlines()
                return [json.loads(line) for line in lines if line.startswith("{")]

            # The file watch may see the edit first; either way the change is applied once
            # and the SIGHUP is handled (a reload of unchanged files changes nothing).
            wait_for(
                lambda: any(
                    e.get("event") == "reloaded" and "alpha" in e.get("changed", [])
                    for e in events()
                ),
                30,
                "alpha change applied",
            )
            wait_for(
                lambda: any(
                    e.get("event") == "signal" and e.get("signal") == "SIGHUP" for e in events()
                ),
                30,
                "SIGHUP handled",
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("event") == "reloaded" for e in events)
    assert any(e.get("event") == "stopped" for e in events)
    assert not any(e.get("event") == "crashed" for e in events)
