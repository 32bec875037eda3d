"""Every key of a policy and of the daemon config is declared once, on its model dataclass.

The tables the loader validates with and the JSON Schema are derived from the dataclasses
(`autoscaler.policy.declare`); these tests fail when a model field is added without a key
declaration, when a table key has no model field, or when a published default drifts from the
dataclass default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from autoscaler.policy import declare
from autoscaler.policy.choices import Either, OneOrList, Tagged
from autoscaler.policy.declare import META
from autoscaler.policy.fields import ListOf, MapOf, Obj
from autoscaler.policy.loader import ValidationFailed, load_policy_text
from autoscaler.policy.scalars import Spec
from autoscaler.policy.tables import DAEMON, POLICY

from .test_policy_errors import BASE

# Model attributes that are not file keys, each for a reason (the loader or a builder sets them).
NOT_KEYS = {
    ("Policy", "source_file"),
    ("DaemonConfig", "source_file"),
    ("ProviderProfile", "name"),  # the key under `providers:`
    ("OnMetricFailure", "replicas"),  # from `action: {replicas: N}`
}
# File keys a builder folds into an attribute: `url` becomes `urls`.
INPUT_ONLY = {("PrometheusSource", "url")}


def objs(spec: Spec) -> Iterator[Obj]:
    if isinstance(spec, Obj):
        yield spec
        for f in spec.fields.values():
            yield from objs(f.spec)
    elif isinstance(spec, Either):
        yield from objs(spec.scalar)
        yield from objs(spec.mapping)
    elif isinstance(spec, Tagged):
        for variant in spec.variants.values():
            yield from objs(variant)
    elif isinstance(spec, ListOf | OneOrList):
        yield from objs(spec.item)
    elif isinstance(spec, MapOf):
        yield from objs(spec.value)


ALL = [o for root in (POLICY, DAEMON) for o in objs(root)]
MODELS = {o.build.model for o in ALL if isinstance(o.build, declare.Builder)}


def test_every_table_is_derived_from_a_model() -> None:
    assert all(isinstance(o.build, declare.Builder) for o in ALL)
    assert len(MODELS) >= 30


@pytest.mark.parametrize(
    "model", sorted(MODELS, key=lambda m: m.__name__), ids=lambda m: m.__name__
)
def test_every_model_field_is_a_declared_key_or_a_known_exception(model: type) -> None:
    for f in dataclasses.fields(model):
        declared = META in f.metadata
        assert declared != ((model.__name__, f.name) in NOT_KEYS), (model.__name__, f.name)


def test_every_key_comes_from_a_model_field() -> None:
    for o in ALL:
        model = o.build.model
        declared = {
            f.metadata[META].name or f.name for f in dataclasses.fields(model) if META in f.metadata
        }
        extra = {name for (cls, name) in INPUT_ONLY if cls == model.__name__}
        assert set(o.fields) == declared | extra, model.__name__


def _published(default: Any) -> bool:
    return default is None or isinstance(default, str | int | float | bool)


def test_published_defaults_are_the_dataclass_defaults() -> None:
    checked = 0
    for o in ALL:
        props = o.schema()["properties"]
        for f in dataclasses.fields(o.build.model):
            key = f.metadata.get(META)
            if key is None:
                continue
            name = key.name or f.name
            default = o.fields[name].default  # declared on the key, or a per-use override
            if default is declare.NO_DEFAULT:
                default = f.default
            if default is dataclasses.MISSING or not _published(default):
                assert "default" not in props[name], (o.build.model.__name__, name)
            else:
                assert props[name]["default"] == default, (o.build.model.__name__, name)
                checked += 1
    assert checked >= 40


def test_a_declared_bound_is_what_the_loader_enforces() -> None:
    """One declaration, two uses: the schema's bound and the loader's message agree."""
    schema = POLICY.schema()
    panic = schema["properties"]["behavior"]["properties"]["panic"]["anyOf"][0]
    assert panic["properties"]["threshold"]["exclusiveMinimum"] == 1
    text = BASE + "behavior:\n  panic:\n    threshold: 1\n"
    with pytest.raises(ValidationFailed) as info:
        load_policy_text(text, "p.yaml")
    assert "behavior.panic.threshold: must be > 1, got 1" in str(info.value)
