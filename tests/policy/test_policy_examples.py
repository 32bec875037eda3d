"""Every file in policies/ (and the design reference) loads, and validates against the schema.

Parametrized over the folder, so a new example policy is covered without editing this file.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from autoscaler.policy.loader import load_policies, load_policy_file
from autoscaler.policy.schema import policy_json_schema

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policies"
DESIGN_EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "policy-example.yaml"
EXAMPLES = sorted([*POLICY_DIR.glob("*.yaml"), *POLICY_DIR.glob("*.yml")])


def test_the_policies_folder_has_the_documented_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "chat-prometheus.yaml",
        "batch-redis-zero.yaml",
        "business-hours.yaml",
        "llm-chat.yaml",
        "llm-slo.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_policy_loads(path: Path) -> None:
    policies = load_policy_file(path)
    assert policies, f"{path} holds no policy"
    for policy in policies:
        assert policy.source_file == str(path)
        assert policy.replicas.min <= policy.replicas.max


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_policy_matches_the_json_schema(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(policy_json_schema())
    for document in yaml.safe_load_all(path.read_text()):
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == []


def test_the_whole_folder_loads_with_unique_names() -> None:
    policies = load_policies([POLICY_DIR])
    names = [p.name for p in policies]
    assert len(names) == len(set(names)) >= 3


def test_the_design_reference_policy_loads() -> None:
    (policy,) = load_policy_file(DESIGN_EXAMPLE)
    assert policy.name == "chat-llama"
    assert [m.name for m in policy.metrics] == ["waiting", "kv_cache", "backlog"]


def test_examples_show_their_distinct_features() -> None:
    by_file = {p.name: load_policy_file(p)[0] for p in EXAMPLES}
    chat = by_file["chat-prometheus.yaml"]
    assert {m.source.type for m in chat.metrics} == {"prometheus", "promql"}
    batch = by_file["batch-redis-zero.yaml"]
    assert batch.replicas.min == 0 and batch.scale_to_zero is not None
    assert batch.deployment.create is not None
    assert all(m.source.type == "redis" for m in batch.metrics)
    hours = by_file["business-hours.yaml"]
    assert hours.schedules and hours.schedules[0].timezone == "Asia/Kolkata"
    assert hours.schedules[0].min is not None and hours.schedules[0].min > hours.replicas.min
