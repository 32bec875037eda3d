"""The policy-at-zero flow of test_gateway_daemon.py on the NetMind and Nebius-style
simulators: the real daemon (`autoscaler run`) with its gateway, a chat policy whose deployment
is absent and whose only way back within the test's bound is the gateway's activation. A
request is held, the deployment is created with the policy's name and spec, and the held
request is answered by the deployment's fake vLLM, through the provider client's route: the
model name the provider expects and its inference key (the simulator's inference takes only
that key, distinct from the API token and from the client's key). And the daemon scaling a
ready deployment (a reload raises `min`): requests keep being answered on its last route while
the provider reports it initializing / updating.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from autoscaler.fakecloud.inference import InferenceSettings
from tests.gateway.clouds import (
    CLOUDS,
    MID_SCALE_HEADERS,
    MID_SCALE_TIMEOUT,
    mid_scale_failure,
    policy_yaml,
)
from tests.gateway.support import AUTH
from tests.gateway.test_gateway_daemon import (
    _answered,
    _config,
    _daemon_with_gateway,
    _gateway_section,
    _metric,
    _post_in_thread,
)
from tests.runtime.daemon_support import sim_server, wait_for
from tests.services import free_port

pytestmark = pytest.mark.slow

MODELS = ("chat", "chat-b")
SCALING_WORD = {"netmind": "initializing", "nebius": "updating"}  # the provider's words


def _chat(gw: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    return httpx.post(gw + "/v1/chat/completions", json=body, headers=AUTH, timeout=150)


def _answered_mid_scale(gw: str, model: str) -> httpx.Response:
    """A chat request to `model` while the deployment scales, answered 200; bounded as
    clouds.py says (held instead of answered fails in MID_SCALE_HOLD seconds, not 120)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    try:
        r = httpx.post(
            gw + "/v1/chat/completions",
            json=body,
            headers=MID_SCALE_HEADERS,
            timeout=MID_SCALE_TIMEOUT,
        )
    except httpx.TimeoutException as exc:
        pytest.fail(mid_scale_failure(model, None, repr(exc)))
    assert r.status_code == 200, mid_scale_failure(model, r.status_code, r.text)
    return r


@pytest.mark.parametrize("kind", ["netmind", "nebius"])
def test_request_at_zero_is_held_recreated_with_the_policy_spec_and_answered(
    tmp_path: Path, kind: str
) -> None:
    cloud = CLOUDS[kind]
    settings = InferenceSettings(inference_key=cloud.sim_key(True))
    with sim_server(provision_seconds=1.0, provider=kind, inference=settings) as sim:
        gw_port, http_port = free_port(), free_port()
        folder = tmp_path / "d"
        config = _config(
            folder,
            sim.url,
            http_port=http_port,
            gateway=_gateway_section(gw_port, folder),
            cloud=cloud,
        )
        log = tmp_path / "daemon.log"
        with _daemon_with_gateway(config, log, http_port=http_port, gw_port=gw_port) as (_, gw):
            assert not sim.current("chat-gw")
            results: list[Any] = []
            thread = _post_in_thread(gw, results)
            answer = _answered(thread, results).json()
            created = sim.current("chat-gw")
            assert len(created) == 1
            spec = created[0]["spec"]
            assert {k: spec[k] for k in cloud.spec} == cloud.spec
            item = asyncio.run(cloud.deployed(sim.url, "chat-gw"))
            assert answer["model"] == cloud.upstream_model(item, "chat")
            assert answer["choices"][0]["message"]["content"]
            answered = {"model": "chat", "outcome": "answered"}
            assert _metric(gw, "autoscaler_gateway_requests_total", **answered) == 1
            assert _metric(gw, "autoscaler_gateway_hold_seconds_count", model="chat") == 1
            accepted = {"model": "chat", "result": "accepted"}
            assert _metric(gw, "autoscaler_gateway_activations_total", **accepted) >= 1


@pytest.mark.parametrize("kind", ["netmind", "nebius"])
def test_the_daemon_scaling_a_ready_deployment_keeps_it_answered(tmp_path: Path, kind: str) -> None:
    """The daemon's own gateway routes through the daemon's provider client and deployment
    list (`DaemonRoutes`); a reload raises `min` and the daemon scales the deployment, which
    the simulator keeps in its scaling state for longer than the test."""
    cloud = CLOUDS[kind]
    settings = InferenceSettings(inference_key=cloud.sim_key(True))
    with sim_server(0.5, provider=kind, inference=settings, scale_seconds=600) as sim:
        gw_port, http_port = free_port(), free_port()
        folder = tmp_path / "d"
        config = _config(
            folder,
            sim.url,
            http_port=http_port,
            gateway=_gateway_section(gw_port, folder),
            cloud=cloud,
            models=MODELS,
        )
        policy = folder / "policies" / "chat.yaml"
        policy.write_text(policy_yaml(cloud.spec, MODELS, min_replicas=1, interval="1s"))
        log = tmp_path / "daemon.log"

        def status() -> tuple[str, int] | None:
            found = sim.current("chat-gw")
            return (found[0]["status"], found[0]["replicas"]) if found else None

        with _daemon_with_gateway(config, log, http_port=http_port, gw_port=gw_port) as running:
            daemon, gw = running
            wait_for(lambda: status() == ("ready", 1), 60, "the deployment created and ready")
            first = _chat(gw, "chat")
            assert first.status_code == 200, first.text
            policy.write_text(policy_yaml(cloud.spec, MODELS, min_replicas=2, interval="1s"))
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: status() == ("initializing", 2), 60, "the daemon scaling to 2")
            item = asyncio.run(cloud.deployed(sim.url, "chat-gw"))
            assert item["status"] == SCALING_WORD[kind]
            # chat-b has not been routed yet: the gateway looks the deployment up mid-scale.
            for model in ("chat", "chat-b", "chat"):
                r = _answered_mid_scale(gw, model)
                assert r.json()["model"] == cloud.upstream_model(item, model)
            assert status() == ("initializing", 2)  # answered while it scales
