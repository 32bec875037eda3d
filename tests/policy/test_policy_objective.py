"""The `objective:` section: what it loads into, and its errors as `FILE:LINE:COL` lines."""

from __future__ import annotations

import pytest

from autoscaler.policy.loader import ValidationFailed, load_policy_text
from autoscaler.policy.model import Objective, ObjectiveSignals
from autoscaler.policy.schema import policy_json_schema

SOURCE = '{type: promql, url: "http://prom:9090", query: "q"}'
BASE = f"""\
name: slo
deployment: {{provider: neevcloud-prod, name: slo}}
replicas: {{min: 1, max: 8}}
metrics:
  - name: arrivals
    source: {SOURCE}
  - name: service
    source: {SOURCE}
  - name: waiting
    source: {SOURCE}
    target: {{type: average_value, value: 5}}
objective:
  queue_wait: 5s
  concurrency: 16
  signals:
    arrival_rate: arrivals
    service_time: service
"""


def errors(text: str) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        load_policy_text(text, "p.yaml")
    return [str(e).removeprefix("p.yaml:") for e in caught.value.errors]


def test_loads_with_defaults_and_targetless_signals() -> None:
    (policy,) = load_policy_text(BASE, "p.yaml")
    assert policy.objective == Objective(
        signals=ObjectiveSignals(arrival_rate="arrivals", service_time="service"),
        concurrency=16,
        queue_wait=5.0,
    )
    assert policy.objective.quantile == 0.99 and policy.objective.startup == 180.0
    assert policy.objective.forecast is True
    assert [m.target is None for m in policy.metrics] == [True, True, False]


def test_every_field() -> None:
    text = (
        BASE.replace(
            "  concurrency: 16\n",
            "  concurrency: 16\n  quantile: 0.95\n  startup: 4m\n  forecast: false\n"
            "  service_time_cv: 1.5\n",
        ).replace(
            "objective:\n",
            f"  - name: running\n    source: {SOURCE}\n  - name: wait_p99\n    source: {SOURCE}\n"
            "objective:\n",
        )
        + "    queue: waiting\n    in_flight: running\n    observed_wait: wait_p99\n"
    )
    (policy,) = load_policy_text(text, "p.yaml")
    o = policy.objective
    assert o is not None
    assert (o.quantile, o.startup, o.forecast, o.service_time_cv) == (0.95, 240.0, False, 1.5)
    assert o.signals.names() == (
        ("arrival_rate", "arrivals"),
        ("service_time", "service"),
        ("in_flight", "running"),
        ("queue", "waiting"),
        ("observed_wait", "wait_p99"),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            BASE.replace("    service_time: service\n", "    service_time: servce\n"),
            [
                "17:19: objective.signals.service_time: must name a metric of this policy, "
                'one of [arrivals, service, waiting], got "servce"',
                '7:5: metrics[1]: missing required key "target" (only a metric named in '
                "objective.signals may go without one)",
            ],
        ),
        (
            BASE.replace("  queue_wait: 5s\n", ""),
            ['13:3: objective: missing required key "queue_wait"'],
        ),
        (
            BASE.replace("concurrency: 16", "concurrency: 0"),
            ["14:16: objective.concurrency: must be >= 1 and <= 1000000, got 0"],
        ),
        (
            BASE.replace("  concurrency: 16\n", "  concurrency: 16\n  quantile: 1\n"),
            ["15:13: objective.quantile: must be > 0 and < 1, got 1"],
        ),
        (
            BASE.replace("    arrival_rate: arrivals\n", ""),
            ['16:5: objective.signals: missing required key "arrival_rate"'],
        ),
        (
            BASE.replace("service_time: service", "service_time: arrivals"),
            [
                '7:5: metrics[1]: missing required key "target" (only a metric named in '
                "objective.signals may go without one)",
                '17:19: objective.signals.service_time: names metric "arrivals", already the '
                "arrival_rate signal; each signal reads its own metric",
            ],
        ),
        (
            BASE.replace("objective:", "objectiv:"),
            [
                '12:1: objectiv: unknown key "objectiv" (did you mean "objective"?)',
                '5:5: metrics[0]: missing required key "target" (only a metric named in '
                "objective.signals may go without one)",
                '7:5: metrics[1]: missing required key "target" (only a metric named in '
                "objective.signals may go without one)",
            ],
        ),
    ],
)
def test_errors(text: str, expected: list[str]) -> None:
    assert sorted(errors(text)) == sorted(expected)


def test_published_in_the_schema() -> None:
    schema = policy_json_schema()
    objective = schema["properties"]["objective"]
    assert "objective" not in schema.get("required", [])
    assert "metrics" in schema["required"]
    text = str(objective)
    for key in ("queue_wait", "concurrency", "signals", "arrival_rate", "observed_wait"):
        assert key in text
    metric = schema["properties"]["metrics"]["items"]
    assert metric["required"] == ["name", "source"]
