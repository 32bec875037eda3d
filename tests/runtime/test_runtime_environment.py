"""AUTOSCALER_CONFIG, AUTOSCALER_LISTEN and AUTOSCALER_LOG_LEVEL, as a container sets them:
over the config file, checked like it, kept across a reload; and a real `autoscaler run`
started by them alone."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from autoscaler.policy.loader import load_daemon_config
from autoscaler.runtime.environment import with_environment
from autoscaler.runtime.reload import load_checked
from tests.runtime.daemon_support import (
    PYTHON,
    REPO,
    policy_yaml,
    sim_server,
    wait_for,
    write_config,
)
from tests.services import free_port, require_tcp

EXAMPLE = REPO / "deploy" / "config.yaml"


def test_overrides_and_their_errors() -> None:
    config = load_daemon_config(EXAMPLE)
    same = with_environment(config, {})
    assert same == config
    changed = with_environment(
        config, {"AUTOSCALER_LISTEN": "0.0.0.0:9000", "AUTOSCALER_LOG_LEVEL": "DEBUG"}
    )
    assert not isinstance(changed, list)
    assert changed.http.listen == "0.0.0.0:9000" and changed.log.level == "debug"
    assert changed.providers == config.providers
    errors = with_environment(
        config, {"AUTOSCALER_LISTEN": "nowhere", "AUTOSCALER_LOG_LEVEL": "loud"}
    )
    assert isinstance(errors, list) and len(errors) == 2
    assert errors[0].startswith("AUTOSCALER_LISTEN: 'nowhere' must be HOST:PORT")
    assert errors[1] == ("AUTOSCALER_LOG_LEVEL: 'loud' must be one of debug, info, warning, error")


def test_every_load_applies_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    policy = policy_yaml("p-env", redis_key="unused")
    config = write_config(tmp_path, "http://127.0.0.1:1", {"p": policy})
    monkeypatch.setenv("AUTOSCALER_LISTEN", "127.0.0.1:9999")
    loaded = load_checked(str(config))
    assert not isinstance(loaded, list) and loaded[0].http.listen == "127.0.0.1:9999"
    monkeypatch.setenv("AUTOSCALER_LOG_LEVEL", "verbose")
    assert load_checked(str(config)) == [
        "AUTOSCALER_LOG_LEVEL: 'verbose' must be one of debug, info, warning, error"
    ]


def run_daemon(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PYTHON, "-m", "autoscaler", "run"],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=str(REPO),
    )


@pytest.mark.slow
def test_a_daemon_configured_by_the_environment(tmp_path: Path) -> None:
    require_tcp("Redis", 6379)
    in_file, from_env = free_port(), free_port()
    with sim_server(provision_seconds=0.2) as sim:
        policy = policy_yaml("env-p", redis_key=f"test:env:{uuid.uuid4().hex}", min_replicas=1)
        config = write_config(tmp_path, sim.url, {"p": policy}, http_port=in_file)
        log = tmp_path / "daemon.log"
        env = {
            "AUTOSCALER_CONFIG": str(config),
            "AUTOSCALER_LISTEN": f"127.0.0.1:{from_env}",
            "AUTOSCALER_LOG_LEVEL": "debug",
        }
        process = run_daemon(env, log)
        try:

            def ready() -> bool:
                try:
                    url = f"http://127.0.0.1:{from_env}/readyz"
                    return httpx.get(url, timeout=2).status_code == 200
                except httpx.HTTPError:
                    return process.poll() is not None

            wait_for(ready, 30, "daemon ready on AUTOSCALER_LISTEN")
            assert process.poll() is None, log.read_text()[-3000:]
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{in_file}/healthz", timeout=1)

            def debug_event() -> bool:
                for line in log.read_text().splitlines():
                    if line.startswith("{") and json.loads(line).get("level") == "debug":
                        return True
                return False

            wait_for(debug_event, 30, "a debug log line (AUTOSCALER_LOG_LEVEL=debug)")
        finally:
            process.terminate()
            assert process.wait(30) == 0
    bad = run_daemon({**env, "AUTOSCALER_LISTEN": "no-port"}, tmp_path / "bad.log")
    assert bad.wait(60) == 2
    assert "AUTOSCALER_LISTEN: 'no-port' must be HOST:PORT" in (tmp_path / "bad.log").read_text()
    unset = {k: v for k, v in env.items() if k != "AUTOSCALER_CONFIG"}
    none = subprocess.run(
        [PYTHON, "-m", "autoscaler", "run"],
        env={k: v for k, v in {**os.environ, **unset}.items() if k != "AUTOSCALER_CONFIG"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
    )
    assert none.returncode == 2 and "AUTOSCALER_CONFIG" in none.stderr
