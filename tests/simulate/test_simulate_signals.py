"""Binding policy metrics to simulated signals, and the values a source would report."""

from __future__ import annotations

import pytest

from autoscaler.policy.model import (
    Deployment,
    HttpJsonSource,
    Metric,
    NatsSource,
    Policy,
    PrometheusSource,
    PromQLSource,
    RabbitMQSource,
    RedisSource,
    Replicas,
    Target,
)
from autoscaler.simulate.signals import (
    BindingError,
    Signals,
    bind_metrics,
    metric_values,
    parse_signal_options,
)

TARGET = Target("average_value", 5.0)


def policy(*sources: object) -> Policy:
    metrics = tuple(Metric(f"m{i}", s, TARGET) for i, s in enumerate(sources))  # type: ignore[arg-type]
    return Policy("p", Deployment("x", "p"), Replicas(1, 5), metrics, source_file="p.yaml")


def prom(metric: str, aggregate: str = "sum") -> PrometheusSource:
    return PrometheusSource(("http://h/metrics",), metric, aggregate=aggregate)  # type: ignore[arg-type]


def test_automatic_bindings() -> None:
    bound = bind_metrics(
        policy(
            prom("vllm:num_requests_waiting"),
            prom("vllm:num_requests_running"),
            prom("vllm:kv_cache_usage_perc", "avg"),
            PromQLSource(
                "http://prom", "sum(vllm:num_requests_running) + sum(vllm:num_requests_waiting)"
            ),
            PromQLSource("http://prom", "avg(vllm:kv_cache_usage_perc)"),
            RedisSource("redis://h", "k", mode="list"),
            RedisSource("redis://h", "k", mode="pending", group="g"),
            RabbitMQSource("amqp://h", "q"),
            RabbitMQSource("amqp://h", "q", include_unacked=True),
            NatsSource("nats://h", "s", "c"),
            NatsSource("nats://h", "s", "c", include_ack_pending=True),
        ),
        {},
    )
    assert [b.signal for b in bound] == [
        "waiting",
        "running",
        "utilization",
        "in_flight",
        "utilization",
        "waiting",
        "running",
        "waiting",
        "in_flight",
        "waiting",
        "in_flight",
    ]


def test_unbound_metric_is_an_error_naming_it() -> None:
    with pytest.raises(BindingError) as err:
        bind_metrics(policy(HttpJsonSource("http://h", "a.b"), prom("my_custom_gauge")), {})
    text = str(err.value)
    assert "m0 (http_json source)" in text and "m1 (prometheus metric my_custom_gauge)" in text
    assert "p.yaml" in text and "--signal" in text


def test_signal_option_overrides_and_validates() -> None:
    bound = bind_metrics(
        policy(HttpJsonSource("http://h", "a")), parse_signal_options(["m0=running"])
    )
    assert bound[0].signal == "running" and bound[0].how == "--signal"
    for bad in ("m0", "=running", "m0=speed"):
        with pytest.raises(BindingError):
            parse_signal_options([bad])


def test_values_follow_the_source_aggregation() -> None:
    signals = Signals(waiting=6.0, running=30.0, arrival_rate=2.0, utilization=0.75, reporting=3)
    bound = bind_metrics(
        policy(
            prom("vllm:num_requests_waiting"),  # sum over replicas: the total
            prom("vllm:num_requests_running", "avg"),  # per replica
            prom("vllm:kv_cache_usage_perc", "avg"),  # a ratio
            prom("vllm:kv_cache_usage_perc", "sum"),  # a sum of ratios
            HttpJsonSource("http://h", "a"),
        ),
        {"m4": "in_flight"},
    )
    assert metric_values(bound, signals) == {
        "m0": 6.0,
        "m1": 10.0,
        "m2": 0.75,
        "m3": 2.25,
        "m4": 36.0,
    }
