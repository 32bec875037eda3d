"""A delete to zero is not sent when the spec captured for the deployment could not create it
again (`actions.recreatable`): garbage the provider reported for a spec field the policy's
`deployment.create` does not set would otherwise be all a recreate had."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.core.status import DeploymentState
from autoscaler.fakecloud import VirtualClock
from autoscaler.providers.base import DeploymentInfo
from autoscaler.runtime.actions import ActionAborted, recreatable
from tests.providers.helpers import SPECS, client


def test_a_spec_the_provider_would_refuse_stops_the_delete() -> None:
    provider: Any = client("neevcloud", "http://127.0.0.1:9", VirtualClock())
    live = DeploymentInfo(id="d1", name="dep-a", state=DeploymentState("ready", 2))
    assert recreatable(provider, live, dict(SPECS["neevcloud"])) == SPECS["neevcloud"]
    with pytest.raises(ActionAborted, match="gpu_count"):
        recreatable(provider, live, {**SPECS["neevcloud"], "gpu_count": "2"})
    with pytest.raises(ActionAborted, match="plan_id"):
        recreatable(provider, live, {k: v for k, v in SPECS["neevcloud"].items() if k != "plan_id"})
