"""The policy-at-zero flow of test_gateway_daemon.py on the NetMind and Nebius-style
simulators: the real daemon (`autoscaler run`) with its gateway, a chat policy whose deployment
is absent and whose only way back within the test's bound is the gateway's activation. A
request is held, the deployment is created with the policy's name and spec, and the held
request is answered by the deployment's fake vLLM, through the provider client's route: the
model name the provider expects and its inference key (the simulator's inference takes only
that key, distinct from the API token and from the client's key).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from autoscaler.fakecloud.inference import InferenceSettings
from tests.gateway.clouds import CLOUDS
from tests.gateway.test_gateway_daemon import (
    _answered,
    _config,
    _gateway_section,
    _metric,
    _post_in_thread,
    _ready,
    _stop,
)
from tests.runtime.daemon_support import sim_server, start_daemon_process, wait_for
from tests.services import free_port

pytestmark = pytest.mark.slow


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
        daemon = start_daemon_process(config, log=tmp_path / "daemon.log")
        try:
            wait_for(lambda: _ready(f"http://127.0.0.1:{http_port}/readyz"), 60, "daemon ready")
            gw = f"http://127.0.0.1:{gw_port}"
            wait_for(lambda: _ready(gw + "/healthz"), 30, "gateway up")
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
        finally:
            _stop(daemon)
