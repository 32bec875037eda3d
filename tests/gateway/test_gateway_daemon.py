"""The gateway with the real daemon (`autoscaler run` processes) and the NeevCloud simulator,
whose deployments serve a fake vLLM once ready, over real HTTP.

- In the daemon: a chat policy at zero, whose only way to come back within the test's bound
  is the gateway's direct activation (interval and zero poll are 60 s): a request is held,
  the deployment is created with its name and spec, and the held request is answered.
- A separate gateway process and a daemon SIGKILLed: the gateway keeps holding (activation
  refused, retried), and once the daemon is started again it acts and the request is answered.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.clouds import CLOUDS, Cloud, policy_yaml
from tests.gateway.support import KEY
from tests.runtime.daemon_support import (
    PYTHON,
    REPO,
    sim_server,
    start_daemon_process,
    wait_for,
)
from tests.services import free_port

pytestmark = pytest.mark.slow

ADMIN = "admin-token-for-gateway-tests"
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}


def _config(
    folder: Path,
    sim_url: str,
    *,
    http_port: int,
    gateway: str = "",
    state: str | None = None,
    cloud: Cloud = CLOUDS["neevcloud"],
    named_key: bool = True,
    models: tuple[str, ...] = ("chat",),
    on_failure: str = "report",
) -> Path:
    """A daemon config for the `chat` policy (`policy_yaml`) on `cloud`'s simulator at
    `sim_url`; `named_key`: the profile names an inference key (NeevCloud always needs one)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies").mkdir(exist_ok=True)
    (folder / "policies" / "chat.yaml").write_text(
        policy_yaml(cloud.spec, models, on_failure=on_failure)
    )
    (folder / "admin").write_text(ADMIN)
    (folder / "client-key").write_text(KEY)
    config = folder / "config.yaml"
    config.write_text(
        f"""policies: {folder / "policies"}
providers:
{cloud.provider_yaml(sim_url, folder, named_key=named_key)}state:
  url: {state or f"sqlite:///{folder.parent / 'state.db'}"}
  lease_ttl: 3s
http:
  listen: 127.0.0.1:{http_port}
  admin_token: {{file: {folder / "admin"}}}
log: {{format: json, level: info}}
zero_poll_interval: 60s
shutdown_timeout: 5s
{gateway}"""
    )
    return config


def _gateway_section(port: int, folder: Path, daemons: list[str] | None = None) -> str:
    lines = [
        "gateway:",
        f"  listen: 127.0.0.1:{port}",
        f"  api_keys: [{{file: {folder / 'client-key'}}}]",
        "  poll_interval: 0.2s",
    ]
    if daemons:
        lines.append(f"  daemons: [{', '.join(daemons)}]")
    return "\n".join(lines) + "\n"


def _post_in_thread(url: str, results: list[Any]) -> threading.Thread:
    def post() -> None:
        try:
            r = httpx.post(
                url + "/v1/chat/completions",
                json=CHAT,
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=150,
            )
            results.append(r)
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def _answered(thread: threading.Thread, results: list[Any]) -> httpx.Response:
    """The 200 answer `_post_in_thread` got (waiting for it with a generous bound)."""
    thread.join(150)
    assert results, "no answer"
    answer = results[0]
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 200, answer.text
    return answer


def _metric(url: str, name: str, **labels: str) -> float:
    try:
        text = httpx.get(url + "/metrics", timeout=5).text
    except httpx.HTTPError:
        return -1.0
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}}"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _gateway_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """`autoscaler gateway --config config` (a separate gateway), its output appended to `log`."""
    return subprocess.Popen(
        [PYTHON, "-m", "autoscaler", "gateway", "--config", str(config)],
        cwd=str(REPO),
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )


@contextmanager
def _daemon_with_gateway(
    config: Path, log: Path, *, http_port: int, gw_port: int
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`autoscaler run` on `config` with its in-process gateway, once both answer: the process
    and the gateway's URL; stopped on the way out."""
    daemon = start_daemon_process(config, log=log)
    try:
        wait_for(lambda: _ready(f"http://127.0.0.1:{http_port}/readyz"), 60, "daemon ready")
        gw = f"http://127.0.0.1:{gw_port}"
        wait_for(lambda: _ready(gw + "/healthz"), 30, "gateway up")
        yield daemon, gw
    finally:
        _stop(daemon)


@contextmanager
def _in_daemon(tmp_path: Path, sim_url: str) -> Iterator[str]:
    """`autoscaler run` with its in-process gateway, the `chat` policy on NeevCloud's simulator
    at `sim_url`: the gateway's URL."""
    gw_port, http_port = free_port(), free_port()
    folder = tmp_path / "d"
    folder.mkdir()
    config = _config(
        folder, sim_url, http_port=http_port, gateway=_gateway_section(gw_port, folder)
    )
    log = tmp_path / "daemon.log"
    with _daemon_with_gateway(config, log, http_port=http_port, gw_port=gw_port) as (_, gw):
        yield gw


def test_in_daemon_request_at_zero_is_held_recreated_and_answered(tmp_path: Path) -> None:
    with sim_server(provision_seconds=1.0) as sim, _in_daemon(tmp_path, sim.url) as gw:
        assert not sim.current("chat-gw")
        results: list[Any] = []
        thread = _post_in_thread(gw, results)
        answer = _answered(thread, results)
        assert answer.json()["choices"][0]["message"]["content"]
        created = sim.current("chat-gw")
        assert len(created) == 1
        assert (
            _metric(gw, "autoscaler_gateway_requests_total", model="chat", outcome="answered") == 1
        )
        assert _metric(gw, "autoscaler_gateway_hold_seconds_count", model="chat") == 1


def test_in_daemon_a_failed_deployment_under_report_is_refused_at_once(tmp_path: Path) -> None:
    """The policy's `on_deployment_failure` is `report`: the daemon will not recreate it, so the
    gateway, looking it up through the daemon's own deployment list, refuses instead of holding
    for `max_hold` (120 s; the request's own bound of 30 s would end such a hold first)."""
    with sim_server(provision_seconds=0.2) as sim, _in_daemon(tmp_path, sim.url) as gw:
        results: list[Any] = []
        _answered(_post_in_thread(gw, results), results)
        (deployment,) = sim.current("chat-gw")
        sim.fail(deployment["id"])
        r = httpx.post(
            gw + "/v1/chat/completions",
            json=CHAT,
            headers={"Authorization": f"Bearer {KEY}", "X-Scale-Up-Timeout": "30"},
            timeout=60,
        )
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "deployment_failed", r.text
        assert "retry-after" in r.headers
        refused = "refused_deployment_failed"
        assert _metric(gw, "autoscaler_gateway_requests_total", model="chat", outcome=refused) == 1
        assert [d["status"] for d in sim.current("chat-gw")] == ["failed"]


def test_separate_gateway_keeps_holding_while_the_daemon_is_killed(tmp_path: Path) -> None:
    with sim_server(provision_seconds=1.0) as sim:
        gw_port, http_port = free_port(), free_port()
        folder = tmp_path / "d"
        folder.mkdir()
        daemon_config = _config(folder, sim.url, http_port=http_port)
        daemon_url = f"http://127.0.0.1:{http_port}"
        gw_folder = tmp_path / "g"
        gw_config = _config(
            gw_folder,
            sim.url,
            http_port=free_port(),
            gateway=_gateway_section(gw_port, gw_folder, [daemon_url]),
        )
        log = tmp_path / "daemon.log"
        daemon = start_daemon_process(daemon_config, log=log)
        gateway = _gateway_process(gw_config, tmp_path / "gateway.log")
        try:
            wait_for(lambda: _ready(daemon_url + "/readyz"), 60, "daemon ready")
            gw = f"http://127.0.0.1:{gw_port}"
            wait_for(lambda: _ready(gw + "/healthz"), 60, "gateway up")
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(10)
            results: list[Any] = []
            thread = _post_in_thread(gw, results)
            wait_for(
                lambda: (
                    _metric(
                        gw, "autoscaler_gateway_activations_total", model="chat", result="refused"
                    )
                    >= 2
                ),
                60,
                "activation refused while the daemon is down",
            )
            assert _metric(gw, "autoscaler_gateway_held_requests", model="chat") == 1
            assert not results and not sim.current("chat-gw")
            daemon = start_daemon_process(daemon_config, log=log)
            _answered(thread, results)
            assert len(sim.current("chat-gw")) == 1
            assert (
                _metric(gw, "autoscaler_gateway_activations_total", model="chat", result="accepted")
                >= 1
            )
        finally:
            _stop(daemon)
            _stop(gateway)
