"""The route a runner saves with its state (`runtime/known_route.py`): taken from a ready
deployment, handed to a fresh client (a restarted daemon) for the same deployment seen
scaling, never for another one, dropped when the deployment fails; a saved value that is not
well formed is ignored. Real provider clients against the in-process simulators."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from autoscaler.core.status import DeploymentState
from autoscaler.policy.model import InferenceProfile
from autoscaler.providers.base import SeenRoute
from autoscaler.runtime.known_route import keep_route
from autoscaler.runtime.stored import stored_route
from tests.providers.helpers import SPECS, client, run
from tests.providers.test_providers_inference_route import sim_client


@pytest.mark.parametrize("kind", ["neevcloud", "netmind"])
def test_a_restarted_client_gets_the_saved_route_back_for_the_same_deployment(kind: str) -> None:
    app, clock, before = sim_client(kind)

    async def scenario() -> None:
        await before.create("chat-llama", SPECS[kind], 1)
        ready = await before.wait_ready("chat-llama", 900)
        known = keep_route(before, None, ready)
        assert known is not None and known.deployment_id == ready.id
        assert keep_route(before, known, ready) is known  # unchanged: the same value
        scaling = await before.scale(ready, 3)
        assert scaling.status == "initializing"
        saved = stored_route({"core": {}, "route": known.to_json()})
        assert saved == known

        after = _second_client(kind, app, clock)
        assert after.inference_route(scaling) is None  # never saw it ready: would hold
        other = dataclasses.replace(scaling, id="another-deployment")
        assert keep_route(after, saved, other) is saved
        assert after.inference_route(other) is None  # another id: not adopted
        assert keep_route(after, saved, scaling) is saved
        route = after.inference_route(scaling)
        assert route is not None and route.base_url == known.base_url
        assert route.model == known.model
        failed = dataclasses.replace(scaling, state=DeploymentState("failed", 3))
        assert keep_route(after, saved, failed) is None

    run(scenario())


def _second_client(kind: str, app: Any, clock: Any) -> Any:
    """Another client of the same simulator: a daemon process started again."""
    return client(
        kind,
        f"http://{kind}.sim",
        clock,
        transport=httpx.ASGITransport(app=app),
        inference=InferenceProfile(token="k"),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "stored",
    [
        None,
        {},
        {"route": None},
        {"route": "x"},
        {"route": {"deployment": {"id": "", "name": "n"}, "base_url": "http://x"}},
        {"route": {"deployment": {"id": "d", "name": "n"}, "base_url": 3}},
        {"route": {"base_url": "http://x"}},
    ],
)
def test_a_saved_route_that_is_not_well_formed_is_ignored(stored: Any) -> None:
    assert stored_route(stored) is None


def test_a_saved_route_without_a_model_reads_back() -> None:
    route = {"deployment": {"id": "d", "name": "n"}, "base_url": "http://x", "model": 5}
    assert stored_route({"route": route}) == SeenRoute("d", "n", "http://x", None)
