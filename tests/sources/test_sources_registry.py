"""The explicit registry: every model source type builds, and unknown types are refused."""

from __future__ import annotations

import dataclasses

import pytest

from autoscaler.policy.model import (
    SOURCE_TYPES,
    GatewaySource,
    HttpJsonSource,
    NatsSource,
    PrometheusSource,
    PromQLSource,
    RabbitMQSource,
    RedisSource,
)
from autoscaler.sources.base import PermanentSourceError
from autoscaler.sources.registry import BUILDERS, build_source

pytestmark = pytest.mark.anyio

SPECS = [
    PrometheusSource(urls=("http://u:pw1@127.0.0.1:1/metrics",), metric="m"),
    PromQLSource(url="http://u:pw2@127.0.0.1:1", query="sum(x)"),
    RedisSource(url="redis://:pw3@127.0.0.1:1/0", key="jobs"),
    RabbitMQSource(url="amqp://guest:pw4@127.0.0.1:1/", queue="jobs"),
    NatsSource(url="nats://127.0.0.1:1", stream="S", consumer="c"),
    HttpJsonSource(url="http://127.0.0.1:1/x", path="a.b"),
    GatewaySource(signal="held", models=("chat",), urls=("http://u:pw5@127.0.0.1:1",)),
]


def test_every_type_has_a_builder() -> None:
    assert set(BUILDERS) == set(SOURCE_TYPES)
    assert {s.type for s in SPECS} == set(SOURCE_TYPES)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
async def test_builds_and_describes_without_secrets(spec) -> None:
    source = build_source(spec, name="metric-x")
    assert source.describe.startswith(spec.type)
    for secret in ("pw1", "pw2", "pw3", "pw4"):
        assert secret not in source.describe
    await source.aclose()
    await source.aclose()  # closing twice is harmless


def test_unknown_type_is_refused_with_the_allowed_values() -> None:
    odd = dataclasses.replace(SPECS[0])
    object.__setattr__(odd, "type", "kafka")
    with pytest.raises(
        PermanentSourceError, match=r'"type" value "kafka" must be one of \[prometheus'
    ):
        build_source(odd, name="metric-x")
