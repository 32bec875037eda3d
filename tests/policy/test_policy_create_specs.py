"""`deployment.create` and `deployment.name` against each provider's documented rules: found by
`validate` and every load, located at the bad key, per provider type (the profile's type with
a daemon config; `deployment.provider_type` or the create keys without), and in the schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from autoscaler.cli import main
from autoscaler.policy.create_specs import CREATE, infer_type
from autoscaler.policy.loader import ValidationFailed, load_daemon, load_policy_text
from autoscaler.policy.schema import policy_json_schema
from tests.providers.helpers import SPECS


def policy(create: str, *, name: str = "chat-llama", extra: str = "") -> str:
    """A policy whose deployment block starts on line 2; `create` lines start on line 6."""
    return (
        "name: chat\n"
        "deployment:\n"
        "  provider: prod\n"
        f"  name: {name}\n{extra}"
        "  create:\n"
        f"{create}"
        "replicas: {min: 0, max: 4}\n"
        "scale_to_zero: {after: 10m, activation: [{metric: q, threshold: 0}]}\n"
        "metrics:\n"
        "  - name: q\n"
        "    source: {type: redis, url: 'redis://127.0.0.1:6379/0', key: q}\n"
        "    target: {type: average_value, value: 5}\n"
    )


def block(spec: dict[str, object]) -> str:
    return "".join(f"    {k}: {json.dumps(v)}\n" for k, v in spec.items())


def errors(text: str) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        load_policy_text(text, "p.yaml")
    return [str(e) for e in caught.value.errors]


@pytest.mark.parametrize("provider", sorted(SPECS))
def test_each_providers_documented_spec_loads(provider: str) -> None:
    (loaded,) = load_policy_text(policy(block(SPECS[provider])))
    assert loaded.deployment.create is not None
    assert set(loaded.deployment.create) == set(SPECS[provider])
    assert infer_type(SPECS[provider]) == provider


NEEV = SPECS["neevcloud"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (  # a misspelt key: located, with the key it probably meant
            {**{k: v for k, v in NEEV.items() if k != "plan_id"}, "plan": "ondemand-h100"},
            [
                'p.yaml:6:5: deployment.create: missing required key "plan_id"',
                'p.yaml:11:5: deployment.create.plan: unknown key "plan" (did you mean "plan_id"?)',
            ],
        ),
        (
            {**NEEV, "gpu_count": 0},
            ["p.yaml:9:16: deployment.create.gpu_count: must be >= 1, got 0"],
        ),
        (
            {**NEEV, "catalog_id": "meta-llama/Llama-3.1-8B-Instruct"},
            [
                "p.yaml:6:17: deployment.create.catalog_id: must be the catalog's url-safe id "
                "(letters, digits, '_', '-', '.'), got \"meta-llama/Llama-3.1-8B-Instruct\""
            ],
        ),
        (
            {**NEEV, "region": 7},
            [
                "p.yaml:7:13: deployment.create.region: must be a string, got 7 (quote it to make "
                "it a string)"
            ],
        ),
        (
            {**NEEV, "config": {"max_model_length": 8192}},
            [
                "p.yaml:11:14: deployment.create.config.max_model_length: unknown key "
                '"max_model_length" (did you mean "max_model_len"?)'
            ],
        ),
    ],
)
def test_neevcloud_create_mistakes_are_located(
    spec: dict[str, object], expected: list[str]
) -> None:
    assert errors(policy(block(spec))) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "Chat_Llama",
            "must be a DNS-1123 label: lowercase letters, digits and '-', starting "
            'and ending with a letter or digit, got "Chat_Llama"',
        ),
        ("ab", 'must be 3 to 30 characters, got 2: "ab"'),
        ("a" * 31, f'must be at most 30 characters, got 31: "{"a" * 31}"'),
        (
            "chat-",
            "must be a DNS-1123 label: lowercase letters, digits and '-', starting "
            'and ending with a letter or digit, got "chat-"',
        ),
    ],
)
def test_neevcloud_deployment_names_are_dns_labels(name: str, message: str) -> None:
    assert errors(policy(block(NEEV), name=name)) == [f"p.yaml:4:9: deployment.name: {message}"]


def test_netmind_and_nebius_rules() -> None:
    netmind = {"deploy_metadata": {"image_url": "vllm/vllm-openai", "port": 70000}}
    assert errors(policy(block(netmind), extra="  provider_type: netmind\n")) == [
        'p.yaml:7:5: deployment.create: missing required key "flavor_id" (or "flavor")',
        "p.yaml:7:64: deployment.create.deploy_metadata.port: must be >= 1 and <= 65535, got 70000",
    ]
    nebius = {k: v for k, v in SPECS["nebius"].items() if k != "gpu_type"}
    assert errors(policy(block(nebius))) == [
        'p.yaml:6:5: deployment.create: missing required key "gpu_type"'
    ]


def test_provider_type_picks_the_rules_when_keys_do_not_tell() -> None:
    # Only gpu_count: NeevCloud and Nebius both have it, so nothing is inferred ...
    load_policy_text(policy("    gpu_count: 1\n"))
    # ... unless the policy says which API it is written for.
    assert errors(policy("    gpu_count: 1\n", extra="  provider_type: nebius\n")) == [
        'p.yaml:7:5: deployment.create: missing required key "model_name"',
        'p.yaml:7:5: deployment.create: missing required key "flavor_name"',
        'p.yaml:7:5: deployment.create: missing required key "gpu_type"',
    ]


def write_daemon(tmp_path: Path, provider_type: str, policy_text: str) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(policy_text)
    config = tmp_path / "config.yaml"
    config.write_text(
        "policies: policies\n"
        "providers:\n"
        f"  prod: {{type: {provider_type}, base_url: 'http://127.0.0.1:1', org_id: o, "
        "project_id: p, token: {env: T}}\n"
    )
    return config


def test_with_a_daemon_config_the_profiles_type_decides(tmp_path: Path) -> None:
    # NeevCloud-shaped keys, but the profile is Nebius: checked as Nebius.
    config = write_daemon(tmp_path, "nebius", policy(block(NEEV)))
    with pytest.raises(ValidationFailed) as caught:
        load_daemon(config)
    lines = [f"{e.line}:{e.col}: {e.path}: {e.message}" for e in caught.value.errors]
    assert '6:5: deployment.create: missing required key "model_name"' in lines
    assert (
        '6:5: deployment.create.catalog_id: unknown key "catalog_id"; allowed keys: '
        "[model_name, flavor_name, gpu_type, gpu_count]" in lines
    )


def test_a_provider_type_that_contradicts_the_profile_is_an_error(tmp_path: Path) -> None:
    config = write_daemon(
        tmp_path, "neevcloud", policy(block(NEEV), extra="  provider_type: nebius\n")
    )
    with pytest.raises(ValidationFailed) as caught:
        load_daemon(config)
    assert [f"{e.line}:{e.col}: {e.path}: {e.message}" for e in caught.value.errors] == [
        '5:18: deployment.provider_type: is "nebius" but provider profile "prod" is of type '
        '"neevcloud"'
    ]


def test_validate_prints_create_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(policy(block({**NEEV, "gpu_count": "two"})))
    assert main(["validate", str(bad)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f'{bad}:9:16: deployment.create.gpu_count: must be an integer, got "two"'
    ]


def test_the_schema_checks_create_per_provider_type() -> None:
    check = jsonschema.Draft202012Validator(policy_json_schema())
    good = yaml.safe_load(policy(block(NEEV), extra="  provider_type: neevcloud\n"))
    assert list(check.iter_errors(good)) == []
    bad = yaml.safe_load(
        policy(block({**NEEV, "gpu_count": 0}), extra="  provider_type: neevcloud\n")
    )
    assert not check.is_valid(bad)
    nebius_named_wrong = yaml.safe_load(
        policy(block(SPECS["nebius"]), name="Chat_X", extra="  provider_type: nebius\n")
    )
    assert check.is_valid(nebius_named_wrong)  # the DNS rule is NeevCloud's only
    neev_named_wrong = yaml.safe_load(
        policy(block(NEEV), name="Chat_X", extra="  provider_type: neevcloud\n")
    )
    assert not check.is_valid(neev_named_wrong)
    for provider, spec in CREATE.items():  # every provider's spec is in the schema
        assert spec.schema()["required"], provider
