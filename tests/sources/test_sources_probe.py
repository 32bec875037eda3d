"""`autoscaler probe`: every metric read once, concurrently; text and JSON output; exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from autoscaler.cli import main
from tests.services import free_port, require_tcp
from tests.sources.expositions import FIXTURES
from tests.sources.httpserver import Reply, serving

FIXTURE = (FIXTURES / "vllm_metrics.txt").read_text()
REPO = Path(__file__).resolve().parents[2]


def policy_file(
    tmp_path: Path, metrics_url: str, redis_key: str, dead_port: int, extra_policy: bool = False
) -> Path:
    text = f"""
name: chat
deployment: {{provider: sim, name: chat-llama}}
replicas: {{min: 1, max: 4}}
metrics:
  - name: waiting
    source: {{type: prometheus, url: "{metrics_url}", metric: "vllm:num_requests_waiting"}}
    target: {{type: average_value, value: 5}}
  - name: tokens
    source: {{type: prometheus, url: "{metrics_url}", metric: "vllm:prompt_tokens_total"}}
    target: {{type: average_value, value: 1000}}
  - name: backlog
    source: {{type: redis, url: "redis://127.0.0.1:6379/0", key: "{redis_key}", mode: list}}
    target: {{type: average_value, value: 20}}
  - name: gateway
    source: {{type: http_json, url: "http://127.0.0.1:{dead_port}/stats", path: a.b, timeout: 2s}}
    target: {{type: value, value: 20}}
"""
    if extra_policy:
        text += f"""---
name: batch
deployment: {{provider: sim, name: batch-llama}}
replicas: {{min: 1, max: 2}}
metrics:
  - name: waiting
    source: {{type: prometheus, url: "{metrics_url}", metric: "vllm:num_requests_running"}}
    target: {{type: average_value, value: 5}}
"""
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def redis_list():
    require_tcp("Redis", 6379)
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    key = f"autoscaler-test:probe:{uuid.uuid4().hex[:8]}"
    client.rpush(key, *range(4))
    yield key
    client.delete(key)
    client.close()


def test_probe_json(tmp_path: Path, redis_list: str, capsys) -> None:
    dead = free_port()
    with serving(metrics=Reply(FIXTURE)) as srv:
        path = policy_file(tmp_path, srv.url(), redis_list, dead)
        code = main(["probe", "--policy", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1  # the gateway metric cannot be read
    by_name = {r["name"]: r for r in out}
    assert [r["name"] for r in out] == ["waiting", "tokens", "backlog", "gateway"]
    assert by_name["waiting"]["value"] == 8.0 and by_name["waiting"]["error"] is None
    assert by_name["tokens"]["value"] == 0.0  # the fixture does not change: rate 0 over the pause
    assert by_name["backlog"]["value"] == 4.0
    assert by_name["gateway"]["value"] is None
    assert (
        f"gateway: cannot connect to http://127.0.0.1:{dead}/stats" in by_name["gateway"]["error"]
    )
    assert all(set(r) == {"name", "value", "error", "seconds"} for r in out)
    assert all(r["seconds"] >= 0 for r in out)


def test_probe_text_and_name_selection(tmp_path: Path, redis_list: str, capsys) -> None:
    with serving(metrics=Reply(FIXTURE)) as srv:
        path = policy_file(tmp_path, srv.url(), redis_list, free_port(), extra_policy=True)
        code = main(["probe", "--policy", str(path), "--name", "batch"])
        text = capsys.readouterr().out
        assert code == 0
        assert text.split()[0] == "waiting" and text.split()[-1] == "6"
        code = main(["probe", "--policy", str(path), "--name", "nope"])
        assert code == 2
        assert "no policy named 'nope' (have: chat, batch)" in capsys.readouterr().err
        code = main(["probe", "--policy", str(path), "--json"])
        names = [r["name"] for r in json.loads(capsys.readouterr().out)]
        assert names[0] == "chat/waiting" and names[-1] == "batch/waiting"
        assert code == 1


def test_probe_invalid_policy_exits_2_with_located_errors(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmetrics: 5\n")
    assert main(["probe", "--policy", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:")
    assert main(["probe", "--policy", str(tmp_path / "missing.yaml")]) == 2


def test_probe_as_a_command(tmp_path: Path, redis_list: str) -> None:
    with serving(metrics=Reply(FIXTURE)) as srv:
        path = policy_file(tmp_path, srv.url(), redis_list, free_port(), extra_policy=True)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "autoscaler",
                "probe",
                "--policy",
                str(path),
                "--name",
                "batch",
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["value"] == 6.0
