"""Small pure parts: the activate body, usage read from a stream split anywhere, signals summed
over gateways, the hub's expiring reports, and which models refuse for a failed deployment."""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.core.status import DeploymentState
from autoscaler.gateway.routes import RouteTable
from autoscaler.gateway.signals import SignalHub
from autoscaler.gateway.stats import Stats, Window, signal_value
from autoscaler.gateway.upstream import SseUsage, as_openai_error
from autoscaler.policy.model import GatewayConfig, OnDeploymentFailure
from autoscaler.runtime.http import parse_activate
from tests.gateway.support import policy

STREAM = (
    b'data: {"choices":[{"delta":{"content":"a"}}],"usage":null}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":5}}\n\n'
    b"data: [DONE]\n\n"
)


@given(st.lists(st.integers(0, len(STREAM)), max_size=8))
def test_stream_usage_found_wherever_the_chunks_split(cuts: list[int]) -> None:
    points = sorted({0, len(STREAM), *cuts})
    watcher = SseUsage()
    for a, b in itertools.pairwise(points):
        watcher.feed(STREAM[a:b])
    assert watcher.usage == (11, 5)


def test_parse_activate() -> None:
    assert parse_activate(b"") == (None, {})
    assert parse_activate(b'{"origin": "gw-1", "held": {"chat": 3}}') == ("gw-1", {"chat": 3})
    for bad in (b"[1]", b'{"held": {"chat": -1}}', b'{"held": {"chat": true}}', b"{x"):
        with pytest.raises(ValueError):
            parse_activate(bad)


def test_signals_sum_over_gateways_and_weight_means() -> None:
    a = Window(arrivals=30, ttft_sum=1.0, ttft_count=10, held=2, concurrency=3)
    b = Window(arrivals=30, ttft_sum=3.0, ttft_count=10, held=1, concurrency=1)
    assert signal_value([a, b], "held", 60) == 3
    assert signal_value([a, b], "concurrency", 60) == 4
    assert signal_value([a, b], "arrival_rate", 60) == 1.0
    assert signal_value([a, b], "ttft", 60) == pytest.approx(0.2)
    assert signal_value([], "ttft", 60) == 0.0


def test_hub_reads_local_stats_and_expiring_reports() -> None:
    now = [100.0]
    hub = SignalHub(clock=lambda: now[0])
    stats = Stats(["chat"])
    hub.attach(stats)
    stats.arrived("chat", 100.0)
    stats.held_changed("chat", +1, 100.0)
    hub.report("gw-2", {"chat": 4}, ttl=5)
    assert signal_value(hub.windows(["chat"], 10), "held", 10) == 5
    now[0] = 106.0
    assert signal_value(hub.windows(["chat"], 10), "held", 10) == 1
    stats.held_changed("chat", -1, 106.0)
    assert signal_value(hub.windows(["chat"], 10), "concurrency", 10) == 1  # peak in window
    assert signal_value(hub.windows(["chat"], 2), "concurrency", 2) == 0


def test_upstream_error_bodies_become_openai_errors() -> None:
    shaped = b'{"error": {"message": "bad", "type": "invalid_request_error"}}'
    assert as_openai_error(400, shaped) == shaped
    wrapped = json.loads(as_openai_error(503, b"<html>busy</html>"))
    assert wrapped["error"]["code"] == "upstream_503" and "busy" in wrapped["error"]["message"]


@pytest.mark.anyio
async def test_a_deployment_changing_its_count_keeps_its_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from autoscaler.gateway.routes import routable
    from autoscaler.policy.model import InferenceProfile, ProviderProfile, SecretRef
    from autoscaler.providers.base import DeploymentInfo
    from autoscaler.providers.registry import build_provider

    monkeypatch.setenv("GW_TEST_INFERENCE_KEY", "sk-nc-key")
    profile = ProviderProfile(
        name="neev",
        type="neevcloud",
        base_url="http://127.0.0.1:1",
        org_id="o",
        project_id="p",
        token=SecretRef(env="GW_TEST_INFERENCE_KEY"),
        inference=InferenceProfile(token=SecretRef(env="GW_TEST_INFERENCE_KEY")),
    )
    provider = build_provider(profile)
    ready = DeploymentInfo(
        id="d1",
        name="chat",
        state=DeploymentState("ready", 1, 1),
        endpoint_url="http://chat.example/v1",
        served_model="org/chat",
    )
    route = routable(ready, provider)
    assert route is not None and route.base_url == "http://chat.example/v1"
    scaling = DeploymentInfo(id="d1", name="chat", state=DeploymentState("initializing", 2))
    assert routable(scaling, provider) == route  # replicas keep serving during a scale
    starting = DeploymentInfo(id="d2", name="other", state=DeploymentState("initializing", 1))
    assert routable(starting, provider) is None  # never served: start-up, hold
    none_ready = DeploymentInfo(
        id="d3",
        name="x",
        state=DeploymentState("ready", 1, 0),
        endpoint_url="http://x.example/v1",
    )
    assert routable(none_ready, provider) is None
    assert routable(None, provider) is None
    await provider.aclose()


def test_a_failed_deployment_is_refused_for_when_the_daemon_will_not_recreate_it() -> None:
    """`report`, or `recreate` with no `deployment.create` (the core cannot recreate it)."""
    recreate = OnDeploymentFailure(action="recreate")
    base = policy("r", "reported")
    policies = [
        base,
        dataclasses.replace(policy("c", "recreated"), on_deployment_failure=recreate),
        dataclasses.replace(
            policy("n", "nothing-to-create"),
            on_deployment_failure=recreate,
            deployment=dataclasses.replace(base.deployment, name="n-dep", create=None),
        ),
    ]
    table = RouteTable.build(policies, GatewayConfig())
    refuses = {model: table.by_model[model].refuse_failed for model in table.models()}
    assert refuses == {"reported": True, "recreated": False, "nothing-to-create": True}
