"""The policy document: its target, metrics, deployment and replicas, and the `Policy` itself
with the checks that span sections (metric names, scale to zero, bounds, gateway sources).

Each key is declared once on its dataclass field (`declare.spec`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from autoscaler.policy import create_specs
from autoscaler.policy.declare import obj, spec
from autoscaler.policy.errors import quote
from autoscaler.policy.fields import FreeMap, Here, ListOf
from autoscaler.policy.scalars import INVALID, Bool, Duration, Enum, Int, Num, Str, one_of
from autoscaler.policy.sections.behavior import (
    BEHAVIOR,
    COST,
    MAX_REPLICAS,
    ON_DEPLOYMENT_FAILURE,
    ON_METRIC_FAILURE,
    SCALE_TO_ZERO,
    SCHEDULE,
    Behavior,
    Cost,
    OnDeploymentFailure,
    OnMetricFailure,
    ScaleToZero,
    Schedule,
)
from autoscaler.policy.sections.objective import (
    OBJECTIVE,
    POLICY_GATEWAY,
    Objective,
    PolicyGateway,
)
from autoscaler.policy.sections.sources import SOURCE, GatewaySource, MetricSource
from autoscaler.policy.yamlnodes import Collector, locate, mapping_pairs

TargetType = Literal["value", "average_value", "utilization"]
MIN_INTERVAL = 0.05  # seconds: the shortest evaluation period a policy may set

LABEL_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
LABEL_TEXT = (
    "a lowercase name of letters, digits and '-' that starts and ends with a letter or digit"
)


@dataclass(frozen=True, slots=True)
class Target:
    type: TargetType = field(
        metadata=spec(
            Enum(
                ("value", "average_value", "utilization"),
                "value: total; average_value: per replica; utilization: ratio per replica",
            )
        )
    )
    value: float = field(  # > 0; per replica for average_value, a ratio for utilization
        metadata=spec(
            Num(
                "target (> 0); per replica for average_value; a ratio in (0, 1] for utilization",
                gt=0,
            )
        )
    )


def _check_target(here: Here) -> None:
    if here.ok("type", "value") and here["type"] == "utilization" and here["value"] > 1:
        here.error(
            ["value"],
            f"a utilization target is a ratio in (0, 1] (0.8 = 80%), got {here['value']:g}",
        )


TARGET = obj(Target, "the HPA target for this metric", checks=[_check_target])


@dataclass(frozen=True, slots=True)
class Metric:
    # unique within the policy; referenced by activation and replay observations
    name: str = field(metadata=spec(Str("unique within the policy; used by activation and replay")))
    source: MetricSource = field(metadata=spec(SOURCE))
    # None: an input only (named in `objective.signals`); the HPA recommend stage skips it.
    # (`target: null` is refused: leave the key out)
    target: Target | None = field(default=None, metadata=spec(TARGET, nullable=False))


METRIC = obj(
    Metric,
    "one metric the replica count follows (or, without a target, an input named in "
    "objective.signals)",
)


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str = field(  # a provider profile name from the daemon config
        metadata=spec(Str("a provider profile name from the daemon config"))
    )
    name: str = field(  # identity at the provider across delete / recreate
        metadata=spec(
            Str("deployment name at the provider: its identity across delete and recreate")
        )
    )
    create: Mapping[str, Any] | None = field(  # provider-specific spec used to deploy again
        default=None,
        metadata=spec(
            FreeMap(
                "provider-specific spec used to deploy it again after scale to zero "
                "(required when replicas.min is 0)"
            )
        ),
    )
    # The provider API `create` is written for, when the policy says (validate without a
    # daemon config); the daemon checks it against its profile's type.
    provider_type: str | None = field(
        default=None,
        metadata=spec(
            Enum(
                create_specs.PROVIDER_TYPES,
                "the provider API of deployment.create, so `validate` checks it without the "
                "daemon config (the daemon uses its profile's type and requires they agree)",
            )
        ),
    )


DEPLOYMENT = obj(
    Deployment,
    "the deployment this policy scales",
    schema_extra={"allOf": create_specs.deployment_schema_branches()},
)


@dataclass(frozen=True, slots=True)
class Replicas:
    min: int = field(
        metadata=spec(
            Int("lowest replica count; 0 enables scale to zero", ge=0, le=MAX_REPLICAS), default=1
        )
    )
    max: int = field(metadata=spec(Int("highest replica count", ge=1, le=MAX_REPLICAS)))


def _check_replicas(here: Here) -> None:
    if here.ok("min", "max") and here["min"] > here["max"]:
        here.error(["min"], f"min ({here['min']}) must be <= max ({here['max']})")


REPLICAS = obj(Replicas, "replica bounds", checks=[_check_replicas])


@dataclass(frozen=True, slots=True)
class Policy:
    name: str = field(
        metadata=spec(
            Str(
                "unique policy name; used in metric labels and logs",
                pattern=LABEL_PATTERN,
                pattern_text=LABEL_TEXT,
                max_len=63,
            )
        )
    )
    deployment: Deployment = field(metadata=spec(DEPLOYMENT))
    replicas: Replicas = field(metadata=spec(REPLICAS))
    metrics: tuple[Metric, ...] = field(
        metadata=spec(ListOf(METRIC, "metrics the replica count follows", min_items=1))
    )
    interval: float = field(
        default=15.0,
        # Each evaluation reads every metric source: a period under 50 ms (the demo's fastest,
        # 1 s at --speed 20) would only hammer them and spin the daemon.
        metadata=spec(Duration("evaluation period", positive=True, at_least=MIN_INTERVAL)),
    )
    behavior: Behavior = field(default_factory=Behavior, metadata=spec(BEHAVIOR))
    scale_to_zero: ScaleToZero | None = field(default=None, metadata=spec(SCALE_TO_ZERO))
    on_metric_failure: OnMetricFailure = field(
        default_factory=OnMetricFailure, metadata=spec(ON_METRIC_FAILURE)
    )
    on_deployment_failure: OnDeploymentFailure = field(
        default_factory=OnDeploymentFailure, metadata=spec(ON_DEPLOYMENT_FAILURE)
    )
    schedules: tuple[Schedule, ...] = field(
        default=(), metadata=spec(ListOf(SCHEDULE, "bounds that apply inside cron windows"))
    )
    cost: Cost = field(default_factory=Cost, metadata=spec(COST))
    dry_run: bool = field(
        default=False, metadata=spec(Bool("decide and report, never call the provider"))
    )
    paused: bool = field(default=False, metadata=spec(Bool("take no action")))
    source_file: str | None = None  # where it was loaded from, for messages (not a file key)
    # models the gateway routes here
    gateway: PolicyGateway | None = field(default=None, metadata=spec(POLICY_GATEWAY))
    # latency objective (docs/objective.md)
    objective: Objective | None = field(default=None, metadata=spec(OBJECTIVE))

    def metric(self, name: str) -> Metric | None:
        for m in self.metrics:
            if m.name == name:
                return m
        return None


# --- checks across sections -----------------------------------------------------------------


def _metric_names(here: Here) -> list[tuple[int, str]]:
    """(index, name) of each metric with a string name, read from the nodes so it works
    even when another part of a metric is invalid."""
    metrics, _ = locate(here.node, here.path, ["metrics"], here.sink)
    if not isinstance(metrics, SequenceNode) or metrics is here.node:
        return []
    quiet = Collector(here.sink.filename)
    names = []
    for index, item in enumerate(metrics.value):
        if not isinstance(item, MappingNode):
            continue
        for pair in mapping_pairs(item, (), quiet):
            if pair.key == "name" and isinstance(pair.value, ScalarNode):
                if pair.value.tag.endswith(":str"):
                    names.append((index, pair.value.value))
                break
    return names


def _check_metric_names(here: Here) -> None:
    seen: dict[str, int] = {}
    for index, name in _metric_names(here):
        if name in seen:
            here.error(
                ["metrics", index, "name"],
                f"duplicate metric name {quote(name)} (also metrics[{seen[name]}])",
            )
        else:
            seen[name] = index
    if here.ok("scale_to_zero") and here["scale_to_zero"] is not None:
        known = list(dict.fromkeys(name for _, name in _metric_names(here)))
        for i, activation in enumerate(here["scale_to_zero"].activation):
            if activation.metric not in known:
                here.error(
                    ["scale_to_zero", "activation", i, "metric"],
                    f"must name a metric of this policy, one of {one_of(known)}, got "
                    f"{quote(activation.metric)}",
                )


def _check_objective_signals(here: Here) -> None:
    """Signals name metrics of the policy; a metric without a target must be a signal."""
    objective = here.values.get("objective")
    if objective is INVALID:
        return
    signals = objective.signals.names() if objective is not None else ()
    known = list(dict.fromkeys(name for _, name in _metric_names(here)))
    first: dict[str, str] = {}  # metric -> the signal that named it first
    for key, name in signals:
        if name in first:  # each signal is another quantity (a rate, seconds, a count)
            here.error(
                ["objective", "signals", key],
                f"names metric {quote(name)}, already the {first[name]} signal; each signal "
                "reads its own metric",
            )
        first.setdefault(name, key)
        if name not in known:
            here.error(
                ["objective", "signals", key],
                f"must name a metric of this policy, one of {one_of(known)}, got {quote(name)}",
            )
    if not here.ok("metrics"):
        return
    used = {name for _, name in signals}
    for i, metric in enumerate(here["metrics"]):
        if metric.target is None and metric.name not in used:
            here.error(
                ["metrics", i],
                'missing required key "target" (only a metric named in objective.signals '
                "may go without one)",
            )


def _check_zero(here: Here) -> None:
    if not here.ok("replicas") or here["replicas"].min != 0:
        return
    if here.values.get("scale_to_zero") is None:
        here.error(
            ["replicas", "min"],
            "min: 0 needs a scale_to_zero section (when to delete and what wakes the deployment)",
        )
    if here.ok("deployment") and here["deployment"].create is None:
        here.error(
            ["replicas", "min"],
            "min: 0 needs deployment.create (the spec to deploy it again after scaling to zero)",
        )


def _check_bounds(here: Here) -> None:
    if not here.ok("replicas"):
        return
    low, high = here["replicas"].min, here["replicas"].max
    allowed = f"[{low}, {high}] (replicas.min..replicas.max)"
    if here.ok("schedules"):
        for i, schedule in enumerate(here["schedules"]):
            for key in ("min", "max"):
                value = getattr(schedule, key)
                if value is not None and not low <= value <= high:
                    here.error(["schedules", i, key], f"must be within {allowed}, got {value}")
    if here.ok("on_metric_failure"):
        fallback = here["on_metric_failure"].replicas
        if fallback is not None and not low <= fallback <= high:
            here.error(
                ["on_metric_failure", "action", "replicas"],
                f"fallback must be within {allowed}, got {fallback}",
            )
    if here.ok("cost"):
        _check_cost(here, low)


def _check_cost(here: Here, low: int) -> None:
    cost = here["cost"]
    if cost.max_hourly_usd is not None and cost.replica_hourly_usd is None:
        here.error(["cost", "max_hourly_usd"], "a cost cap needs replica_hourly_usd")
    elif cost.max_hourly_usd is not None and cost.replica_hourly_usd is not None:
        affordable = math.floor(cost.max_hourly_usd / cost.replica_hourly_usd + 1e-9)
        if affordable < max(1, low):
            here.error(
                ["cost", "max_hourly_usd"],
                f"{cost.max_hourly_usd:g} USD/h pays for {affordable} replicas at "
                f"{cost.replica_hourly_usd:g} USD/h, fewer than "
                f"{max(1, low)} (replicas.min, at least 1)",
            )


def _check_gateway_sources(here: Here) -> None:
    """A gateway source without `model` reads the policy's own models: it needs some."""
    if not here.ok("metrics") or here.values.get("gateway") is not None:
        return
    for i, metric in enumerate(here["metrics"]):
        if isinstance(metric.source, GatewaySource) and not metric.source.models:
            here.error(
                ["metrics", i, "source"],
                'a gateway source needs "model" when the policy has no gateway section',
            )


def _build_policy(**values: Any) -> Policy:
    """The policy, with its gateway sources reading the policy's models when they name none,
    over the policy's interval when they set no window."""
    policy = Policy(**values)
    models = policy.gateway.models if policy.gateway is not None else ()
    metrics = []
    for metric in policy.metrics:
        source = metric.source
        if isinstance(source, GatewaySource):
            source = dataclasses.replace(
                source,
                models=source.models or models,
                window=source.window if source.window is not None else policy.interval,
            )
            metric = dataclasses.replace(metric, source=source)
        metrics.append(metric)
    return dataclasses.replace(policy, metrics=tuple(metrics))


POLICY = obj(
    Policy,
    "an autoscaling policy for one LLM deployment",
    build=_build_policy,
    first=("name", "deployment", "replicas", "interval"),
    checks=[
        _check_metric_names,
        _check_objective_signals,
        _check_zero,
        _check_bounds,
        _check_gateway_sources,
    ],
)
