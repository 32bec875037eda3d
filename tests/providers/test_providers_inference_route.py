"""`Provider.inference_route` per provider: where the gateway sends OpenAI-compatible requests,
with which model name and which credential (the profile's `inference.token`, never a client's),
and None while the deployment is not routable. Also the `inference:` profile section."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest

from autoscaler.core.status import DeploymentState
from autoscaler.policy.loader import ValidationFailed, load_daemon_config
from autoscaler.policy.model import InferenceProfile, SecretRef
from autoscaler.providers.base import DeploymentInfo, InferenceRoute, SeenRoute
from autoscaler.secrets import SecretError
from tests.providers.helpers import SPECS, TOKEN, client, in_process, run

INFERENCE_KEY = "sk-nc-inference-key-42"


def ready_info(kind: str, **inference: str) -> tuple[DeploymentInfo, DeploymentInfo, object]:
    """(the deployment while initializing, once ready, the client) from the simulator."""
    app, _sim, clock = in_process(kind, provision_seconds=30)
    profile_inference = InferenceProfile(**inference) if inference else None  # type: ignore[arg-type]
    base = f"http://{kind}.sim"
    p = client(
        kind, base, clock, transport=httpx.ASGITransport(app=app), inference=profile_inference
    )

    async def scenario() -> tuple[DeploymentInfo, DeploymentInfo]:
        made = await p.create("chat-llama", SPECS[kind], 1)
        return made, await p.wait_ready("chat-llama", 900)

    made, ready = run(scenario())
    return made, ready, p


def test_neevcloud_routes_to_endpoint_url_with_the_inference_key_and_model_id() -> None:
    made, ready, p = ready_info("neevcloud", token=INFERENCE_KEY)
    assert p.inference_route(made) is None  # type: ignore[attr-defined]
    got = p.inference_route(ready)  # type: ignore[attr-defined]
    assert isinstance(got, InferenceRoute)
    assert ready.endpoint_url and got.base_url == ready.endpoint_url.rstrip("/")
    assert got.headers == {"Authorization": f"Bearer {INFERENCE_KEY}"}
    assert got.model == "meta-llama/Llama-3.1-8B-Instruct"  # the model_id it serves under
    assert INFERENCE_KEY not in repr(got)


def test_neevcloud_never_sends_the_api_access_token_for_inference() -> None:
    _made, ready, p = ready_info("neevcloud")
    got = p.inference_route(ready)  # type: ignore[attr-defined]
    assert got is not None and "Authorization" not in got.headers
    assert TOKEN not in str(dict(got.headers))


def test_netmind_routes_to_endpoint_metadata_and_falls_back_to_the_api_token() -> None:
    made, ready, p = ready_info("netmind")
    assert p.inference_route(made) is None  # type: ignore[attr-defined]
    got = p.inference_route(ready)  # type: ignore[attr-defined]
    assert got is not None and ready.endpoint_url
    assert got.base_url == ready.endpoint_url.rstrip("/")
    assert got.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert got.model is None  # the container serves what it serves: keep the client's


def test_netmind_prefers_the_inference_token() -> None:
    _made, ready, p = ready_info("netmind", token="nm-inference")
    got = p.inference_route(ready)  # type: ignore[attr-defined]
    assert got is not None and got.headers == {"Authorization": "Bearer nm-inference"}


def test_nebius_routes_by_routing_key_on_the_shared_base() -> None:
    made, ready, p = ready_info("nebius", token="neb-inference")
    assert p.inference_route(made) is None  # type: ignore[attr-defined]
    got = p.inference_route(ready)  # type: ignore[attr-defined]
    assert got is not None
    assert got.base_url == "http://nebius.sim/v1"
    assert got.model == ready.served_model and got.model and got.model.startswith("gpt-oss-120b")
    assert got.headers == {"Authorization": "Bearer neb-inference"}


def test_nebius_configured_base_wins_and_no_routing_key_means_no_route() -> None:
    _made, ready, p = ready_info("nebius", base_url="https://inference.example/v1/")
    got = p.inference_route(ready)  # type: ignore[attr-defined]
    assert got is not None and got.base_url == "https://inference.example/v1"
    keyless = DeploymentInfo(
        id="x", name="x", state=DeploymentState("ready", 1), endpoint_url="http://a"
    )
    assert p.inference_route(keyless) is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", ["failed", "terminating", "absent"])
@pytest.mark.parametrize("kind", ["neevcloud", "netmind", "nebius"])
def test_failed_terminating_or_absent_deployments_are_not_routable(kind: str, status: str) -> None:
    _made, ready, p = ready_info(kind, token="k")
    assert p.inference_route(ready) is not None  # type: ignore[attr-defined]
    fields = {f: getattr(ready, f) for f in ready.__slots__}  # type: ignore[attr-defined]
    not_ready = DeploymentInfo(**{**fields, "state": DeploymentState(status, 1)})
    assert p.inference_route(not_ready) is None  # type: ignore[attr-defined]
    # ... and forgotten: initializing again afterwards is a start, not a scale
    starting = DeploymentInfo(
        **{**fields, "state": DeploymentState("initializing", 1), "endpoint_url": None}
    )
    assert p.inference_route(starting) is None  # type: ignore[attr-defined]


def sim_client(kind: str) -> tuple[Any, Any, Any]:
    """(the simulator app, its clock, a client with an inference key) for `kind`."""
    app, _sim, clock = in_process(kind, provision_seconds=30)
    p = client(
        kind,
        f"http://{kind}.sim",
        clock,
        transport=httpx.ASGITransport(app=app),
        inference=InferenceProfile(token="k"),  # type: ignore[arg-type]
    )
    return app, clock, p


@pytest.mark.parametrize("kind", ["neevcloud", "netmind", "nebius"])
def test_a_scale_in_progress_keeps_the_last_route(kind: str) -> None:
    """NeevCloud reports `initializing` with no endpoint_url while a scale applies, Nebius-style
    `updating`: the replicas keep serving, so the gateway must keep forwarding."""
    _app, _clock, p = sim_client(kind)

    async def scenario() -> None:
        await p.create("chat-llama", SPECS[kind], 1)
        ready = await p.wait_ready("chat-llama", 900)
        route = p.inference_route(ready)
        assert route is not None
        scaling = await p.scale(ready, 3)
        assert scaling.status == "initializing"
        assert p.inference_route(scaling) == route
        again = await p.wait_ready("chat-llama", 900)
        assert again.replicas == 3 and p.inference_route(again) == route

    run(scenario())


@pytest.mark.parametrize("kind", ["neevcloud", "netmind", "nebius"])
def test_deleted_deployments_leave_no_last_route_behind(kind: str) -> None:
    """Scale to zero and back, many times: each delete forgets the deployment's last route (the
    table stays at most one entry per name, not one per deployment ever seen), and the
    deployment created again under the name is starting, so the old route is never offered."""
    _app, clock, p = sim_client(kind)

    async def scenario() -> None:
        old_route = None
        for _ in range(5):
            made = await p.create("chat-llama", SPECS[kind], 1)
            assert p.inference_route(made) is None  # a start, whatever was served before
            ready = await p.wait_ready("chat-llama", 900)
            route = p.inference_route(ready)
            assert route is not None and len(p._routes) == 1
            if old_route is not None and kind == "nebius":
                assert route.model != old_route.model  # the routing key names the new one
            old_route = route
            await p.delete(ready)
            assert len(p._routes) == 0
            while await p.find("chat-llama") is not None:
                clock.advance(10)

    run(scenario())


@pytest.mark.parametrize("kind", ["neevcloud", "netmind", "nebius"])
def test_a_deployment_recreated_behind_the_clients_back_is_not_routed_to_the_old_one(
    kind: str,
) -> None:
    """Deleted by someone else (the client never saw the delete) and created again under its
    name: the new one, initializing, is a start: no route until it is ready."""
    app, clock, p = sim_client(kind)
    other: Any = client(kind, f"http://{kind}.sim", clock, transport=httpx.ASGITransport(app=app))

    async def scenario() -> None:
        await p.create("chat-llama", SPECS[kind], 1)
        ready = await p.wait_ready("chat-llama", 900)
        assert p.inference_route(ready) is not None
        await other.delete(ready)
        while await p.find("chat-llama") is not None:
            clock.advance(10)
        made = await other.create("chat-llama", SPECS[kind], 1)
        assert made.id != ready.id and made.status == "initializing"
        assert p.inference_route(made) is None
        assert len(p._routes) == 0  # and the stale entry went with it

    run(scenario())


def test_a_missing_inference_secret_fails_when_the_client_is_built() -> None:
    app, _sim, clock = in_process("netmind")
    with pytest.raises(SecretError, match="AUTOSCALER_TEST_UNSET_INFERENCE"):
        client(
            "netmind",
            "http://netmind.sim",
            clock,
            transport=httpx.ASGITransport(app=app),
            inference=InferenceProfile(token=SecretRef(env="AUTOSCALER_TEST_UNSET_INFERENCE")),
        )


CONFIG = """\
policies: policies
providers:
  nebius-prod:
    type: nebius
    base_url: https://api.studio.nebius.example
    token: {env: NEBIUS_TOKEN}
    inference:
      token: {file: nebius_inference_key}
      base_url: https://api.studio.nebius.example/v1
"""


def test_the_inference_section_loads_as_secret_references(tmp_path: Path) -> None:
    path = tmp_path / "autoscaler.yaml"
    path.write_text(CONFIG)
    profile = load_daemon_config(path).providers["nebius-prod"]
    assert profile.inference == InferenceProfile(
        token=SecretRef(file="nebius_inference_key"),
        base_url="https://api.studio.nebius.example/v1",
    )


@pytest.mark.parametrize(
    ("inference", "message"),
    [
        ("token: sk-nc-literal", ":8:14: providers.nebius-prod.inference.token:"),
        ("base_url: ftp://x/v1", ":8:17: providers.nebius-prod.inference.base_url:"),
        ("tokne: {env: X}", ":8:7: providers.nebius-prod.inference.tokne:"),
    ],
)
def test_the_inference_section_errors_are_located(
    tmp_path: Path, inference: str, message: str
) -> None:
    path = tmp_path / "autoscaler.yaml"
    head = CONFIG.split("    inference:")[0]
    path.write_text(f"{head}    inference:\n      {inference}\n")
    with pytest.raises(ValidationFailed) as info:
        load_daemon_config(path)
    assert message in str(info.value)


def test_nebius_updating_with_ready_replicas_is_routable_with_no_prior_route() -> None:
    """A client that never saw the endpoint running (a gateway started mid-scale): the
    provider reports it `updating` with its replicas still serving, which is enough."""
    app, clock, p = sim_client("nebius")
    fresh: Any = client(
        "nebius",
        "http://nebius.sim",
        clock,
        transport=httpx.ASGITransport(app=app),
        inference=InferenceProfile(token="fresh-key"),  # type: ignore[arg-type]
    )

    async def scenario() -> None:
        await p.create("chat-llama", SPECS["nebius"], 1)
        ready = await p.wait_ready("chat-llama", 900)
        await p.scale(ready, 3)
        info = await fresh.find("chat-llama")
        assert info is not None and info.status == "initializing"
        assert info.raw_status == "updating" and info.ready_replicas == 1
        got = fresh.inference_route(info)
        assert got is not None, "updating with a serving replica must be routable"
        assert got.base_url == "http://nebius.sim/v1" and got.model == ready.served_model
        assert got.headers == {"Authorization": "Bearer fresh-key"}
        # Until the scale ends, and after it (a fresh route, the same place).
        assert fresh.inference_route(info) == got
        clock.advance(900)
        again = await fresh.find("chat-llama")
        assert again is not None and again.status == "ready"
        assert fresh.inference_route(again) == got

    run(scenario())


@pytest.mark.parametrize("kind", ["neevcloud", "netmind", "nebius"])
def test_an_adopted_route_is_kept_while_scaling_then_follows_the_usual_rules(kind: str) -> None:
    """What a separate gateway does with a daemon's answer (`adopt_route`): the daemon's client
    saw the deployment ready, the gateway's did not. Built with the gateway's own key, kept as
    the last route for that id: fresh once ready, dropped when it fails."""
    app, clock, daemon = sim_client(kind)
    gateway: Any = client(
        kind,
        f"http://{kind}.sim",
        clock,
        transport=httpx.ASGITransport(app=app),
        inference=InferenceProfile(token="gateway-key"),  # type: ignore[arg-type]
    )

    async def scenario() -> None:
        await daemon.create("chat-llama", SPECS[kind], 1)
        ready = await daemon.wait_ready("chat-llama", 900)
        known = daemon.inference_route(ready)
        assert known is not None
        await daemon.scale(ready, 3)
        scaling = await gateway.find("chat-llama")
        assert scaling is not None and scaling.status == "initializing"
        if kind != "nebius":  # no serving count reported: nothing to route on (unchanged)
            assert gateway.inference_route(scaling) is None
        # Only an initializing deployment adopts: a ready one has its own route, a failed
        # one serves nothing.
        for status in ("ready", "failed", "terminating"):
            other = dataclasses.replace(scaling, state=DeploymentState(status, 3))
            assert gateway.adopt_route(other, known.base_url, known.model) is None
        # Nebius-style keeps its own base and routing key; NeevCloud its own model_id.
        told = "http://elsewhere.example/v1" if kind == "nebius" else known.base_url
        adopted = gateway.adopt_route(scaling, told, "some-other-model")
        assert adopted is not None
        assert adopted.base_url == known.base_url and adopted.model == known.model
        assert adopted.headers == {"Authorization": "Bearer gateway-key"}
        assert gateway.inference_route(scaling) == adopted  # kept while it scales
        clock.advance(900)
        ready_again = await gateway.find("chat-llama")
        assert ready_again is not None and ready_again.status == "ready"
        assert gateway.inference_route(ready_again) == adopted  # fresh, the same place
        failed = dataclasses.replace(ready_again, state=DeploymentState("failed", 3))
        assert gateway.inference_route(failed) is None
        restarting = dataclasses.replace(
            ready_again, state=DeploymentState("initializing", 3), endpoint_url=None
        )
        assert gateway.inference_route(restarting) is None  # dropped with the failure

    run(scenario())


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"base_url": "http://x"},
        {"deployment": "d", "base_url": "http://x"},
        {"deployment": {"id": "", "name": "n"}, "base_url": "http://x"},
        {"deployment": {"id": "d", "name": 3}, "base_url": "http://x"},
        {"deployment": {"id": "d", "name": "n"}, "base_url": "ftp://x"},
        {"deployment": {"id": "d", "name": "n"}, "base_url": None},
        {"deployment": {"id": "d", "name": "n"}, "base_url": "http://x", "model": 5},
    ],
)
def test_a_seen_route_that_is_not_that_shape_reads_as_none(body: Any) -> None:
    assert SeenRoute.from_json(body) is None


def test_a_seen_route_reads_back_its_own_json() -> None:
    seen = SeenRoute("d-1", "chat", "https://x/v1", "m")
    assert SeenRoute.from_json(seen.to_json()) == seen
    assert SeenRoute.from_json({**seen.to_json(), "model": None}) == SeenRoute(
        "d-1", "chat", "https://x/v1", None
    )
