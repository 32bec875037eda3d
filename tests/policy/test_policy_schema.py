"""The JSON Schema: valid draft 2020-12, documents every field, agrees with the validator."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from autoscaler.policy.loader import ValidationFailed, load_policy_text
from autoscaler.policy.model import SOURCE_TYPES
from autoscaler.policy.schema import daemon_config_json_schema, policy_json_schema

from .test_policy_daemon_config import CONFIG
from .test_policy_errors import BASE
from .test_policy_examples import DESIGN_EXAMPLE


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(policy_json_schema())


def test_schemas_are_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(policy_json_schema())
    jsonschema.Draft202012Validator.check_schema(daemon_config_json_schema())


def _walk_objects(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(schema, dict):
        if isinstance(schema.get("properties"), dict):
            out.append((path, schema))
        for key, value in schema.items():
            out.extend(_walk_objects(value, f"{path}/{key}"))
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            out.extend(_walk_objects(value, f"{path}/{index}"))
    return out


def test_every_property_has_a_description() -> None:
    for schema in (policy_json_schema(), daemon_config_json_schema()):
        for path, obj in _walk_objects(schema):
            for name, prop in obj["properties"].items():
                assert prop.get("description"), f"{path}/properties/{name} has no description"


def test_every_reference_field_is_in_the_schema() -> None:
    schema = policy_json_schema()
    reference = yaml.safe_load(DESIGN_EXAMPLE.read_text())
    assert set(reference) <= set(schema["properties"])
    behavior = schema["properties"]["behavior"]["properties"]
    assert set(reference["behavior"]) <= set(behavior)
    assert validator().is_valid(reference)


def test_enums_and_defaults_are_published() -> None:
    schema = policy_json_schema()
    source = schema["properties"]["metrics"]["items"]["properties"]["source"]
    assert source["properties"]["type"]["enum"] == list(SOURCE_TYPES)
    target = schema["properties"]["metrics"]["items"]["properties"]["target"]
    assert target["properties"]["type"]["enum"] == ["value", "average_value", "utilization"]
    assert schema["properties"]["interval"]["default"] == 15.0
    assert schema["properties"]["name"]["maxLength"] == 63
    scale_down = schema["properties"]["behavior"]["properties"]["scale_down"]
    assert scale_down["properties"]["stabilization_window"]["default"] == 300.0
    assert scale_down["properties"]["select"]["enum"] == ["max", "min", "disabled"]


def test_the_config_reference_matches_the_config_schema() -> None:
    checker = jsonschema.Draft202012Validator(daemon_config_json_schema())
    assert list(checker.iter_errors(yaml.safe_load(CONFIG))) == []
    literal = yaml.safe_load(CONFIG.replace("{env: NEEVCLOUD_ACCESS_TOKEN}", "secret"))
    assert not checker.is_valid(literal)


# Edits the validator refuses for a single-field reason; the schema must refuse them too.
SCHEMA_REFUSES = [
    BASE.replace('metric: "vllm', 'aggregate: total, metric: "vllm'),
    BASE.replace("name: chat\n", "", 1),
    BASE + "behavior:\n  tolerence: 0.1\n",
    BASE.replace("value: 5}", "value: -5}"),
    BASE.replace("value: 5}", "value: true}"),
    BASE + "interval: 5 minutes\n",
    BASE + "behavior:\n  tolerance: 1.0\n",
    BASE + "behavior:\n  panic: {threshold: 1}\n",
    BASE.replace("type: prometheus", "type: kafka"),
    BASE.replace("name: chat\n", "name: Chat_Bot\n", 1),
    BASE + "on_metric_failure: {action: panic}\n",
    BASE + "on_metric_failure: {after: 0}\n",
    BASE.replace('url: "http://gw:8000/metrics"', 'url: "http://a:1/m", urls: ["http://b:1/m"]'),
    BASE.replace("{min: 1, max: 4}", "{min: 1, max: 4.5}"),
]


@pytest.mark.parametrize("text", SCHEMA_REFUSES, ids=range(len(SCHEMA_REFUSES)))
def test_schema_and_validator_agree_on_single_field_errors(text: str) -> None:
    with pytest.raises(ValidationFailed):
        load_policy_text(text)
    assert not validator().is_valid(yaml.safe_load(text))


def test_schema_accepts_the_shorthands() -> None:
    text = BASE + (
        "interval: 30\n"
        "behavior: {tolerance: {up: 0.05}}\n"
        "on_metric_failure: {action: {replicas: 2}}\n"
    )
    load_policy_text(text)
    assert list(validator().iter_errors(yaml.safe_load(text))) == []
