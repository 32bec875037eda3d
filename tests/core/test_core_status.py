"""One `Status` vocabulary (autoscaler/core/status.py) shared by the core, the provider
clients, the provider simulators and the capacity simulator: each translates into it at its
edge, and nothing else in the package spells the list of status words again."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from autoscaler.core.status import STATUSES, DeploymentState, Status
from autoscaler.fakecloud.state import SimStatus
from autoscaler.providers import nebius, neevcloud, netmind
from autoscaler.providers.base import DeploymentInfo
from autoscaler.simulate.deployment import DeploymentTiming, SimulatedDeployment

ROOT = Path(__file__).resolve().parents[2] / "autoscaler"


def test_the_vocabulary_is_its_literal() -> None:
    assert typing.get_args(Status) == STATUSES


@pytest.mark.parametrize("client", [nebius, neevcloud, netmind])
def test_each_provider_translates_its_words_into_the_vocabulary(client: object) -> None:
    table = client.FROM_PROVIDER  # type: ignore[attr-defined]
    assert set(table.values()) <= set(STATUSES)
    assert "ready" in table.values() and "failed" in table.values()


def test_deployment_info_keeps_the_raw_word() -> None:
    info = DeploymentInfo("id", "n", DeploymentState("ready", 1), raw_status="RUNNING")
    assert (info.status, info.raw_status) == ("ready", "RUNNING")


def test_one_deployment_state_value_from_the_provider_edge_to_the_core() -> None:
    """The value a provider client builds is the one the core reads: not a copy in other
    words (runtime.evaluation hands `DeploymentInfo.state` over as is)."""
    from autoscaler.runtime.evaluation import observation_of

    info = DeploymentInfo("id", "n", DeploymentState("ready", 3, 2))
    observation = observation_of(info, {})
    assert observation.deployment is info.state
    assert (observation.status, observation.replicas, observation.ready) == ("ready", 3, 2)
    assert observation_of(None, {}).deployment == DeploymentState("absent", 0)


def test_the_provider_simulators_use_the_vocabulary_plus_gone() -> None:
    assert set(typing.get_args(SimStatus)) == (set(STATUSES) - {"absent"}) | {"gone"}


def test_the_capacity_simulator_reports_in_the_vocabulary() -> None:
    d = SimulatedDeployment(DeploymentTiming())
    seen = {d.provider_view().status}
    d.start(0.0, 2)
    seen.add(d.provider_view().status)
    d.apply("delete", 0, 1.0)
    seen.add(d.provider_view().status)
    assert seen == {"absent", "ready", "terminating"}
    assert seen <= set(STATUSES)


def _status_lists(path: Path) -> list[int]:
    """Lines of tuples, lists, sets or Literals that spell four or more status words (a subset
    for one check, like `in ("absent", "failed")`, is fine)."""
    words = set(STATUSES)
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        elts: list[ast.expr] = []
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elts = node.elts
        strings = {e.value for e in elts if isinstance(e, ast.Constant)}
        if len(strings & words) >= 4:
            lines.append(node.lineno)
    return lines


def test_no_other_module_spells_the_vocabulary_again() -> None:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).as_posix()
        if rel in ("autoscaler/core/status.py", "autoscaler/fakecloud/state.py"):
            continue  # the vocabulary itself; the simulators' words (checked above)
        lines = _status_lists(path)
        if lines:
            found[rel] = lines
    assert found == {}
