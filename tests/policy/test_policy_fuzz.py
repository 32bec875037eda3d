"""Hypothesis fuzzing of the loader: whatever the input, only ValidationFailed (or success).

Generators: random YAML-ish text, random nested data dumped as YAML, mutations of the
reference policies in policies/ and docs/reference (keys deleted, values replaced by random
types, unknown keys inserted, truncations), and hostile input (issue 14): deep nesting, huge
numbers, odd unicode, tags, and YAML alias bombs ("billion laughs", which must stay bounded).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscaler.policy.loader import ValidationFailed, load_daemon_config_text, load_policy_text
from autoscaler.policy.model import Policy
from autoscaler.policy.schema import policy_json_schema

from .test_policy_daemon_config import CONFIG
from .test_policy_examples import DESIGN_EXAMPLE, EXAMPLES

REFERENCE_TEXTS = [p.read_text() for p in EXAMPLES]
if DESIGN_EXAMPLE.exists():
    REFERENCE_TEXTS.append(DESIGN_EXAMPLE.read_text())


def check_loader(text: str) -> None:
    try:
        policies = load_policy_text(text, "fuzz.yaml")
    except ValidationFailed as failed:
        assert failed.errors, "ValidationFailed without errors"
        for error in failed.errors:
            assert error.line >= 1 and error.col >= 1, error
            assert error.file == "fuzz.yaml"
            assert error.message
            assert str(error).startswith(f"fuzz.yaml:{error.line}:{error.col}: ")
            assert "\n" not in str(error) and "\r" not in str(error), error
    else:
        assert all(isinstance(p, Policy) for p in policies)


YAML_PIECES = st.sampled_from(
    [
        "name: ",
        "deployment:",
        "replicas:",
        "metrics:",
        "  - ",
        "    ",
        "  ",
        "\n",
        ": ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "&a ",
        "*a",
        "<<: ",
        "!!binary ",
        "!foo ",
        "---\n",
        "...\n",
        "? ",
        "|",
        ">",
        "'",
        '"',
        "#",
        "~",
        ".nan",
        ".inf",
        "-.inf",
        "1e999",
        "0x1F",
        "yes",
        "2024-01-01",
        "1:30",
        "min: 0",
        "max: 8",
        "type: prometheus",
        "type: redis",
        "source:",
        "target:",
        "value: ",
        "15s",
        "1h30m",
        "null",
        "true",
        "%YAML 1.1\n",
        "9" * 5000,
        "\t",
        "\x00",
        "\ufeff",
        "é",
        "\\",
        "@",
    ]
)


@given(st.one_of(st.text(max_size=400), st.lists(YAML_PIECES, max_size=60).map("".join)))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_random_yaml_text_only_raises_validation_failed(text: str) -> None:
    check_loader(text)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["15s", "1h30m", "hold", "sum", "prometheus", "http://x:1/m", "0 8 * * *"]),
)
NESTED = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=5),
    ),
    max_leaves=25,
)


@given(NESTED)
def test_random_structures_dumped_as_yaml_only_raise_validation_failed(data: Any) -> None:
    check_loader(yaml.safe_dump(data))


FIELD_NAMES = [
    "name",
    "deployment",
    "provider",
    "create",
    "replicas",
    "min",
    "max",
    "interval",
    "metrics",
    "source",
    "type",
    "url",
    "urls",
    "target",
    "value",
    "behavior",
    "tolerance",
    "scale_up",
    "policies",
    "select",
    "panic",
    "scale_to_zero",
    "activation",
    "threshold",
    "on_metric_failure",
    "action",
    "schedules",
    "cron",
    "timezone",
    "cost",
    "tolerence",
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.extend(_paths(value, (*prefix, index)))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


@st.composite
def mutated_policy(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(REFERENCE_TEXTS))
    doc = copy.deepcopy(yaml.safe_load(text))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        kind = draw(st.sampled_from(["delete", "replace", "insert"]))
        if kind == "delete":
            del parent[path[-1]]
        elif kind == "replace":
            parent[path[-1]] = draw(NESTED)
        else:
            target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
            if isinstance(target, dict):
                key = draw(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=10)))
                target[key] = draw(NESTED)
    return yaml.safe_dump(doc, sort_keys=False)


SCHEMA = jsonschema.Draft202012Validator(policy_json_schema())


@given(mutated_policy())
def test_mutated_policies_only_raise_validation_failed(text: str) -> None:
    check_loader(text)


@given(mutated_policy())
def test_what_the_validator_accepts_the_schema_accepts(text: str) -> None:
    try:
        load_policy_text(text, "fuzz.yaml")
    except ValidationFailed:
        return
    errors = [e.message for e in SCHEMA.iter_errors(yaml.safe_load(text))]
    assert errors == [], text


@given(st.sampled_from(REFERENCE_TEXTS), st.data())
def test_truncated_policies_only_raise_validation_failed(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    check_loader(text[:cut])


def check_config_loader(text: str) -> None:
    try:
        config = load_daemon_config_text(text, "/etc/autoscaler/config.yaml")
    except ValidationFailed as failed:
        assert failed.errors
        for error in failed.errors:
            assert error.line >= 1 and error.col >= 1, error
            assert "\n" not in str(error) and "\r" not in str(error), error
    else:
        assert config.policies.startswith("/")


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    doc = copy.deepcopy(yaml.safe_load(CONFIG))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(NESTED)
    return yaml.safe_dump(doc, sort_keys=False)


@given(st.one_of(mutated_config(), NESTED.map(yaml.safe_dump), st.text(max_size=200)))
def test_config_loader_only_raises_validation_failed(text: str) -> None:
    check_config_loader(text)


# --- hostile input: deep nesting, huge numbers, odd unicode, alias bombs (issue 14) -----------

HOSTILE_SNIPPETS = st.sampled_from(
    [
        "[" * 5000,
        "{a: " * 3000,
        "- " * 3000,
        "\n" + "".join(" " * i + "- \n" for i in range(0, 3000, 2)),
        "9" * 5000,
        "-" + "9" * 4301,
        "1e400",
        "-.inf",
        "0x" + "f" * 3000,
        "0o" + "7" * 3000,
        "1_000_000_000_000_000_000_000",
        "\u202e\u200b\ufeff\u2028\u0085",
        "\U0001f600" * 100,
        "é" * 10_000,
        "\x7f\x1b[31m",
        "&a [*a]",
        "*undefined",
        "&x {<<: *x}",
        "<<: [*a, *a]",
        "!!python/object/apply:os.system ['true']",
        "!!binary AAAA",
        "!!timestamp 2024-13-45",
        "? [a, b]\n: c",
        "%TAG ! tag:evil,2024:\n---\n",
        "'" * 1000,
        "|\n" + "  x\n" * 1000,
    ]
)


@st.composite
def hostile_policy(draw: st.DrawFn) -> str:
    """A reference policy with hostile snippets inserted at random places (text level)."""
    text = draw(st.sampled_from(REFERENCE_TEXTS))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(HOSTILE_SNIPPETS) + text[at:]
    if draw(st.booleans()):
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    return text


@given(hostile_policy())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hostile_snippets_in_reference_policies_only_raise_validation_failed(text: str) -> None:
    check_loader(text)


@given(st.sampled_from(REFERENCE_TEXTS), st.data())
@settings(max_examples=100, deadline=None)
def test_values_swapped_for_hostile_scalars_only_raise_validation_failed(
    text: str, data: st.DataObject
) -> None:
    """Type swaps at the text level: any `key: value` line gets a hostile value."""
    lines = text.splitlines()
    spots = [
        i for i, line in enumerate(lines) if ": " in line and not line.lstrip().startswith("#")
    ]
    for index in data.draw(st.lists(st.sampled_from(spots), min_size=1, max_size=4)):
        key = lines[index].split(": ", 1)[0]
        lines[index] = f"{key}: {data.draw(HOSTILE_SNIPPETS).splitlines()[0] or '~'}"
    check_loader("\n".join(lines) + "\n")


def _laughs(levels: int, anchor: str = "a", indent: str = "") -> str:
    lines = [f'{indent}{anchor}0: &{anchor}0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*{anchor}{i - 1}"] * 9)
        lines.append(f"{indent}{anchor}{i}: &{anchor}{i} [{refs}]")
    return "\n".join(lines) + "\n"


def _bombs() -> dict[str, str]:
    base = next(t for t in REFERENCE_TEXTS if '\n      metric: "' in t)  # a block-style scrape
    merge = "m0: &m0 {a: 1, b: 2}\n" + "".join(
        f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}\n" for i in range(1, 40)
    )
    nested_create = base.replace(
        "deployment:\n", "deployment:\n  create:\n    bomb:\n" + _laughs(12, "c", "      "), 1
    )
    return {
        "top level": _laughs(12) + base,
        "in create (free-form map)": nested_create,
        "as labels": _laughs(12)
        + base.replace('\n      metric: "', '\n      labels: {a: *a11}\n      metric: "', 1),
        "as the metrics list": _laughs(12) + base.replace("metrics:\n", "metrics: *a11\nx:\n", 1),
        "merge keys": merge + base.replace("replicas:", "replicas:\n  <<: *m39\n ", 1),
        "self reference": "a: &a [*a]\n" + base,
        "merge self reference": "a: &a {<<: *a}\n" + base,
    }


@pytest.mark.parametrize("where", list(_bombs()))
def test_alias_bombs_are_a_clear_error_never_a_hang(where: str) -> None:
    """The YAML billion laughs (9^12 leaves if expanded): bounded by the node count, one clear
    error, no traceback. Run in a thread so a hang fails the test instead of hanging it."""
    text = _bombs()[where]
    outcome: list[BaseException | str] = []

    def load() -> None:
        try:
            load_policy_text(text, "bomb.yaml")
            outcome.append("loaded")
        except BaseException as exc:  # the test reports whatever escaped
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(120)  # generous: a bounded load takes well under a second
    assert not thread.is_alive(), f"loading the alias bomb {where} did not finish"
    (result,) = outcome
    assert isinstance(result, ValidationFailed), result
    messages = [str(e) for e in result.errors]
    assert all(m.startswith("bomb.yaml:") for m in messages), messages
    if "self reference" not in where:
        assert any("too large" in m or "unknown key" in m or "must be" in m for m in messages), (
            messages
        )


@given(HOSTILE_SNIPPETS, st.integers(min_value=0, max_value=len(CONFIG)), st.booleans())
@settings(max_examples=60, deadline=None)
def test_hostile_snippets_in_the_daemon_config_only_raise_validation_failed(
    snippet: str, at: int, with_bomb: bool
) -> None:
    text = CONFIG[:at] + snippet + CONFIG[at:]
    check_config_loader((_laughs(12, "z") if with_bomb else "") + text)
