"""The field tables of a policy and of the daemon config, with their cross-field checks.

Every key a policy or config file may hold is declared here once, with its type, bounds,
default and description. `loader` validates with these tables and `schema` publishes them as
JSON Schema, so the two cannot drift. Defaults not written here come from the dataclasses in
`model` (HPA defaults). Parsing YAML and collecting errors live elsewhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from autoscaler import cron
from autoscaler.policy import create_specs
from autoscaler.policy import model as m
from autoscaler.policy.errors import quote
from autoscaler.policy.fields import (
    INVALID,
    Bool,
    Duration,
    Either,
    Enum,
    Field,
    FreeMap,
    Here,
    Int,
    ListOf,
    MapOf,
    Num,
    Obj,
    OneOrList,
    Secret,
    Str,
    Tagged,
    Url,
    one_of,
)
from autoscaler.policy.yamlnodes import Collector, locate, mapping_pairs

LABEL_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
LABEL_TEXT = (
    "a lowercase name of letters, digits and '-' that starts and ends with a letter or digit"
)
MAX_REPLICAS = 10_000
"""Far above any real GPU deployment; keeps replica arithmetic in exact float range."""

HTTP = ("http", "https")


class Builder:
    """A builder function that also names the model class (for schema defaults)."""

    def __init__(self, model: type, fn: Callable[..., Any]):
        self.model = model
        self.fn = fn

    def __call__(self, **values: Any) -> Any:
        return self.fn(**values)


def _regex(text: str) -> None:
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"must be a valid regular expression, got {quote(text)}: {exc}") from None


def _timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except Exception:
        raise ValueError(
            f'must be an IANA time zone like "UTC" or "Asia/Kolkata", got {quote(name)}'
        ) from None


TIMEOUT = Field(Duration("bound on each read of this source", positive=True))
MAX_BODY = Field(
    Int(
        "bytes read from one answer at most (after decompression); a larger body fails the read",
        ge=1024,
        le=1024 * 1024 * 1024,
    )
)
ON_EMPTY = Field(
    Enum(
        ("error", "zero"),
        "when the query matches nothing: fail the read (error) or read 0 (zero)",
    )
)


def _source_type(name: str) -> Field:
    return Field(Enum((name,), "source type"), required=True)


# --- metric sources -------------------------------------------------------------------------


def _build_prometheus(*, url: str | None = None, urls: tuple[str, ...] = (), **rest: Any) -> Any:
    return m.PrometheusSource(urls=(url,) if url is not None else urls, **rest)


def _check_prometheus(here: Here) -> None:
    if "url" in here.given and "urls" in here.given:
        here.error(["urls"], 'set either "url" or "urls", not both')
    elif "url" not in here.given and "urls" not in here.given:
        here.sink.error(here.node, here.path, 'missing required key "url" (or "urls")')


PROMETHEUS = Obj(
    Builder(m.PrometheusSource, _build_prometheus),
    {
        "type": _source_type("prometheus"),
        "url": Field(Url("the /metrics endpoint to scrape", HTTP)),
        "urls": Field(
            ListOf(
                Url("a /metrics endpoint", HTTP),
                "several /metrics endpoints (e.g. one per replica); their series are combined",
                min_items=1,
            )
        ),
        "metric": Field(Str('metric family name, e.g. "vllm:num_requests_waiting"'), required=True),
        "labels": Field(MapOf(Str(min_len=0), "exact label matchers")),
        "labels_regex": Field(
            MapOf(Str(min_len=0, check=_regex), "fully anchored regex label matchers")
        ),
        "aggregate": Field(Enum(("sum", "avg", "max", "min"), "how matching series are combined")),
        "quantile": Field(
            Num("histograms: read this quantile (else the mean over the interval)", gt=0, lt=1),
            nullable=True,
        ),
        "on_empty": ON_EMPTY,
        "timeout": TIMEOUT,
        "max_body": MAX_BODY,
    },
    "scrape a Prometheus/OpenMetrics text exposition (vLLM or gateway /metrics)",
    checks=[_check_prometheus],
    schema_extra={"oneOf": [{"required": ["url"]}, {"required": ["urls"]}]},
)


def _check_promql(here: Here) -> None:
    if here.has("bearer_token") and here.has("basic_auth"):
        here.error(["basic_auth"], 'set either "bearer_token" or "basic_auth", not both')


PROMQL = Obj(
    m.PromQLSource,
    {
        "type": _source_type("promql"),
        "url": Field(
            Url("Prometheus server base URL, e.g. http://prometheus:9090", HTTP), required=True
        ),
        "query": Field(Str("PromQL instant query returning one number"), required=True),
        "bearer_token": Field(Secret("token sent as `Authorization: Bearer`"), nullable=True),
        "basic_auth": Field(
            Obj(
                m.BasicAuth,
                {
                    "username": Field(Str("user name"), required=True),
                    "password": Field(Secret("password"), required=True),
                },
                "HTTP basic authentication",
            ),
            nullable=True,
        ),
        "on_empty": ON_EMPTY,
        "timeout": TIMEOUT,
        "max_body": MAX_BODY,
    },
    "instant query against a Prometheus server's HTTP API (/api/v1/query)",
    checks=[_check_promql],
)


def _check_redis(here: Here) -> None:
    if here.ok("mode") and here["mode"] in ("pending", "lag") and not here.values.get("group"):
        here.error(["mode"], f'mode "{here["mode"]}" needs "group" (the consumer group name)')


REDIS = Obj(
    m.RedisSource,
    {
        "type": _source_type("redis"),
        "url": Field(Url("redis://host:6379/0", ("redis", "rediss", "unix")), required=True),
        "key": Field(Str("list or stream key"), required=True),
        "mode": Field(
            Enum(
                ("list", "stream", "pending", "lag"),
                "list length, stream length, or a consumer group's pending count / lag",
            )
        ),
        "group": Field(Str("consumer group; required for pending and lag"), nullable=True),
        "password": Field(Secret("Redis password"), nullable=True),
        "timeout": TIMEOUT,
    },
    "queue depth in Redis",
    checks=[_check_redis],
)


def _check_rabbitmq(here: Here) -> None:
    if (
        here.ok("include_unacked")
        and here["include_unacked"]
        and not here.values.get("management_url")
    ):
        here.error(
            ["include_unacked"], 'include_unacked needs "management_url" (the management API)'
        )


RABBITMQ = Obj(
    m.RabbitMQSource,
    {
        "type": _source_type("rabbitmq"),
        "url": Field(Url("amqp://user@host:5672/vhost", ("amqp", "amqps")), required=True),
        "queue": Field(Str("queue name"), required=True),
        "include_unacked": Field(Bool("also count unacknowledged messages")),
        "management_url": Field(Url("management API, e.g. http://host:15672", HTTP), nullable=True),
        "password": Field(Secret("RabbitMQ password"), nullable=True),
        "timeout": TIMEOUT,
    },
    "a RabbitMQ queue's ready messages",
    checks=[_check_rabbitmq],
)

NATS = Obj(
    m.NatsSource,
    {
        "type": _source_type("nats"),
        "url": Field(Url("nats://host:4222", ("nats", "tls")), required=True),
        "stream": Field(Str("JetStream stream"), required=True),
        "consumer": Field(Str("durable consumer"), required=True),
        "include_ack_pending": Field(Bool("also count messages awaiting ack")),
        "token": Field(Secret("NATS auth token"), nullable=True),
        "timeout": TIMEOUT,
    },
    "a NATS JetStream consumer's pending messages",
)

HTTP_JSON = Obj(
    m.HttpJsonSource,
    {
        "type": _source_type("http_json"),
        "url": Field(Url("URL to GET", HTTP), required=True),
        "path": Field(Str("dotted path to the number, e.g. data.queue.depth"), required=True),
        "headers": Field(MapOf(Str(min_len=0), "extra request headers")),
        "bearer_token": Field(Secret("token sent as `Authorization: Bearer`"), nullable=True),
        "timeout": TIMEOUT,
        "max_body": MAX_BODY,
    },
    "GET a URL and read a number at a dotted path",
)

MODEL_NAME = Str("a model name clients send in the request's `model` field")


def _build_gateway_source(*, model: tuple[str, ...] = (), **rest: Any) -> Any:
    return m.GatewaySource(models=model, **rest)


GATEWAY_SOURCE = Obj(
    Builder(m.GatewaySource, _build_gateway_source),
    {
        "type": _source_type("gateway"),
        "signal": Field(
            Enum(m.GATEWAY_SIGNALS, "what to read of the gateway's traffic, per model"),
            required=True,
        ),
        "model": Field(
            OneOrList(MODEL_NAME, "the model(s) to read; default: the policy's gateway.model")
        ),
        "window": Field(
            Duration(
                "how far back the windowed signals look (rates, means, peaks); "
                "default: the policy's interval",
                positive=True,
            ),
            nullable=True,
        ),
        "urls": Field(
            ListOf(
                Url("a gateway base URL, e.g. http://127.0.0.1:8080", HTTP),
                "separate gateway processes, summed; empty: the gateway inside this daemon",
            )
        ),
        "timeout": TIMEOUT,
    },
    "the gateway's traffic for some models (autoscaler gateway)",
)

SOURCE = Tagged(
    {
        "prometheus": PROMETHEUS,
        "promql": PROMQL,
        "redis": REDIS,
        "rabbitmq": RABBITMQ,
        "nats": NATS,
        "http_json": HTTP_JSON,
        "gateway": GATEWAY_SOURCE,
    },
    "where the metric is read",
)
assert tuple(SOURCE.variants) == m.SOURCE_TYPES


# --- metrics and targets --------------------------------------------------------------------


def _check_target(here: Here) -> None:
    if here.ok("type", "value") and here["type"] == "utilization" and here["value"] > 1:
        here.error(
            ["value"],
            f"a utilization target is a ratio in (0, 1] (0.8 = 80%), got {here['value']:g}",
        )


TARGET = Obj(
    m.Target,
    {
        "type": Field(
            Enum(
                ("value", "average_value", "utilization"),
                "value: total; average_value: per replica; utilization: ratio per replica",
            ),
            required=True,
        ),
        "value": Field(
            Num(
                "target (> 0); per replica for average_value; a ratio in (0, 1] for utilization",
                gt=0,
            ),
            required=True,
        ),
    },
    "the HPA target for this metric",
    checks=[_check_target],
)

METRIC = Obj(
    m.Metric,
    {
        "name": Field(
            Str("unique within the policy; used by activation and replay"), required=True
        ),
        "source": Field(SOURCE, required=True),
        "target": Field(TARGET),
    },
    "one metric the replica count follows (or, without a target, an input named in "
    "objective.signals)",
)


# --- deployment and replicas ----------------------------------------------------------------

DEPLOYMENT = Obj(
    m.Deployment,
    {
        "provider": Field(Str("a provider profile name from the daemon config"), required=True),
        "name": Field(
            Str("deployment name at the provider: its identity across delete and recreate"),
            required=True,
        ),
        "create": Field(
            FreeMap(
                "provider-specific spec used to deploy it again after scale to zero "
                "(required when replicas.min is 0)"
            ),
            nullable=True,
        ),
        "provider_type": Field(
            Enum(
                create_specs.PROVIDER_TYPES,
                "the provider API of deployment.create, so `validate` checks it without the "
                "daemon config (the daemon uses its profile's type and requires they agree)",
            ),
            nullable=True,
        ),
    },
    "the deployment this policy scales",
    schema_extra={"allOf": create_specs.deployment_schema_branches()},
)


def _check_replicas(here: Here) -> None:
    if here.ok("min", "max") and here["min"] > here["max"]:
        here.error(["min"], f"min ({here['min']}) must be <= max ({here['max']})")


REPLICAS = Obj(
    m.Replicas,
    {
        "min": Field(
            Int("lowest replica count; 0 enables scale to zero", ge=0, le=MAX_REPLICAS), default=1
        ),
        "max": Field(Int("highest replica count", ge=1, le=MAX_REPLICAS), required=True),
    },
    "replica bounds",
    checks=[_check_replicas],
)


# --- behavior -------------------------------------------------------------------------------

TOLERANCE_VALUE = Num("relative band around the target inside which nothing changes", ge=0, lt=1)

TOLERANCE = Either(
    TOLERANCE_VALUE,
    Obj(
        m.Tolerance,
        {
            "up": Field(Num("band above the target", ge=0, lt=1)),
            "down": Field(Num("band below the target", ge=0, lt=1)),
        },
        "separate bands for scaling up and down",
    ),
    "a number in [0, 1) or {up, down}",
    from_scalar=lambda v: m.Tolerance(up=v, down=v),
)

RATE_POLICY = Obj(
    m.RatePolicy,
    {
        "type": Field(
            Enum(
                ("replicas", "percent"),
                "replicas or percent of the count at the start of the period",
            ),
            required=True,
        ),
        "value": Field(
            Int("how many replicas (or percent) per period", gt=0, le=1_000_000), required=True
        ),
        "period": Field(Duration("the period the limit applies to", positive=True), required=True),
    },
    "an HPA rate policy",
)


def _scaling_rules(direction: str, defaults: m.ScalingRules) -> Obj:
    return Obj(
        m.ScalingRules,
        {
            "stabilization_window": Field(
                Duration(
                    f"scale {direction} to the "
                    f"{'lowest' if direction == 'up' else 'highest'} recommendation in "
                    "this window"
                ),
                default=defaults.stabilization_window,
            ),
            "cooldown": Field(
                Duration(f"minimum time after the last action before a scale {direction}"),
                default=defaults.cooldown,
            ),
            "policies": Field(
                ListOf(RATE_POLICY, "rate limits (HPA scaling policies)", min_items=1),
                default=lambda: defaults.policies,
            ),
            "select": Field(
                Enum(
                    ("max", "min", "disabled"),
                    f"which policy wins; disabled: never scale {direction}",
                ),
                default=defaults.select,
            ),
        },
        f"how fast to scale {direction} (HPA behavior)",
    )


PANIC = Obj(
    m.Panic,
    {
        "threshold": Field(Num("instant recommendation >= threshold x ready replicas", gt=1)),
        "hold": Field(Duration("no scale down for this long after the last panic")),
    },
    "Knative-style burst handling",
)

BEHAVIOR = Obj(
    m.Behavior,
    {
        "tolerance": Field(TOLERANCE),
        "scale_up": Field(_scaling_rules("up", m.default_scale_up())),
        "scale_down": Field(_scaling_rules("down", m.default_scale_down())),
        "panic": Field(PANIC, nullable=True),
    },
    "HPA behavior: tolerance, stabilization, rate limits, cooldowns, panic",
)


# --- zero, failures, schedules, cost --------------------------------------------------------

ACTIVATION = Obj(
    m.Activation,
    {
        "metric": Field(Str("a metric name of this policy"), required=True),
        "threshold": Field(Num("active while the metric is above this", ge=0)),
    },
    "a metric that keeps the deployment alive (and wakes it from zero)",
)

SCALE_TO_ZERO = Obj(
    m.ScaleToZero,
    {
        "after": Field(
            Duration(
                "idle this long (every activation metric <= threshold) -> delete", positive=True
            )
        ),
        "activation": Field(
            ListOf(
                ACTIVATION,
                "metrics that decide idle vs active; at least one, or nothing "
                "would ever wake the deployment",
                min_items=1,
            ),
            required=True,
        ),
    },
    "delete the deployment when idle; used only when replicas.min is 0",
)


class _Fallback:
    """Marker value of `action: {replicas: N}` before it becomes OnMetricFailure fields."""

    def __init__(self, replicas: int):
        self.replicas = replicas


ACTION = Either(
    Enum(("hold",), "keep the current count", expected='"hold" or {replicas: N}'),
    Obj(
        _Fallback,
        {"replicas": Field(Int("fallback replica count", ge=0, le=MAX_REPLICAS), required=True)},
        "go to a fallback replica count",
    ),
    '"hold" or {replicas: N}',
)


def _build_on_metric_failure(*, after: int = 3, action: Any = "hold") -> m.OnMetricFailure:
    if isinstance(action, _Fallback):
        return m.OnMetricFailure(after=after, action="replicas", replicas=action.replicas)
    return m.OnMetricFailure(after=after, action="hold")


ON_METRIC_FAILURE = Obj(
    Builder(m.OnMetricFailure, _build_on_metric_failure),
    {
        "after": Field(Int("consecutive evaluations with a failed metric", ge=1, le=1_000_000)),
        "action": Field(ACTION),
    },
    "what to do when metrics keep failing",
)


def _check_backoff(here: Here) -> None:
    if here.ok("backoff", "max_backoff") and here["backoff"] > here["max_backoff"]:
        here.error(
            ["backoff"],
            f"backoff ({here['backoff']:g}s) must be <= max_backoff ({here['max_backoff']:g}s)",
        )


ON_DEPLOYMENT_FAILURE = Obj(
    m.OnDeploymentFailure,
    {
        "action": Field(Enum(("report", "recreate"), "report only, or delete and recreate")),
        "backoff": Field(Duration("first wait before recreating", positive=True)),
        "max_backoff": Field(Duration("longest wait between recreate attempts", positive=True)),
    },
    "what to do when the provider reports the deployment failed",
    checks=[_check_backoff],
)


def _check_schedule(here: Here) -> None:
    if "min" not in here.given and "max" not in here.given:
        here.sink.error(here.node, here.path, 'a schedule must set "min" or "max"')
    if (
        here.ok("min", "max")
        and here["min"] is not None
        and here["max"] is not None
        and here["min"] > here["max"]
    ):
        here.error(["min"], f"min ({here['min']}) must be <= max ({here['max']})")
    if here.ok("cron"):
        timezone = here.values.get("timezone", "UTC")
        if timezone is INVALID:
            timezone = "UTC"
        error = cron_error(here["cron"], timezone)
        if error:
            here.error(["cron"], error)


def cron_error(expr: str, timezone: str) -> str | None:
    """Why `expr` cannot open schedule windows, or None when it can.

    Checked by `autoscaler.cron`, the module the decision core reads fire times from, so
    what validates here is exactly what runs.
    """
    try:
        first = cron.next_fire(expr, timezone, _Y2000)
    except Exception as exc:  # APScheduler and zoneinfo raise several types for bad input
        return (
            f"must be a five-field crontab expression (minute hour day month day_of_week), "
            f"got {quote(expr)}: {exc}"
        )
    if first == math.inf:
        return f"cron expression {quote(expr)} never fires (no such date)"
    return None


_Y2000 = datetime(2000, 1, 1, tzinfo=UTC).timestamp()


SCHEDULE = Obj(
    m.Schedule,
    {
        "cron": Field(Str("window start, five-field crontab"), required=True),
        "duration": Field(Duration("how long the window lasts", positive=True), required=True),
        "timezone": Field(Str("IANA time zone of the cron expression", check=_timezone)),
        "min": Field(
            Int("lowest replica count inside the window", ge=0, le=MAX_REPLICAS), nullable=True
        ),
        "max": Field(
            Int("highest replica count inside the window", ge=1, le=MAX_REPLICAS), nullable=True
        ),
    },
    "replica bounds that apply inside a cron window",
    checks=[_check_schedule],
)

COST = Obj(
    m.Cost,
    {
        "replica_hourly_usd": Field(Num("price of one replica per hour", gt=0), nullable=True),
        "max_hourly_usd": Field(Num("never scale past this hourly spend", gt=0), nullable=True),
    },
    "cost reporting and cap",
)


# --- the gateway ----------------------------------------------------------------------------


def _build_policy_gateway(*, model: tuple[str, ...], **rest: Any) -> Any:
    return m.PolicyGateway(models=model, **rest)


POLICY_GATEWAY = Obj(
    Builder(m.PolicyGateway, _build_policy_gateway),
    {
        "model": Field(
            OneOrList(MODEL_NAME, "the model name(s) the gateway routes to this deployment"),
            required=True,
        ),
        "max_held": Field(
            Int("most requests held at once while the deployment is not ready", ge=0),
            nullable=True,
        ),
        "max_hold": Field(
            Duration("longest a request is held before a 503", positive=True), nullable=True
        ),
    },
    "route these models through the gateway to this deployment",
)


def _check_gateway_sources(here: Here) -> None:
    """A gateway source without `model` reads the policy's own models: it needs some."""
    if not here.ok("metrics") or here.values.get("gateway") is not None:
        return
    for i, metric in enumerate(here["metrics"]):
        if isinstance(metric.source, m.GatewaySource) and not metric.source.models:
            here.error(
                ["metrics", i, "source"],
                'a gateway source needs "model" when the policy has no gateway section',
            )


def _build_policy(**values: Any) -> m.Policy:
    """The policy, with its gateway sources reading the policy's models when they name none,
    over the policy's interval when they set no window."""
    import dataclasses

    policy = m.Policy(**values)
    models = policy.gateway.models if policy.gateway is not None else ()
    metrics = []
    for metric in policy.metrics:
        source = metric.source
        if isinstance(source, m.GatewaySource):
            source = dataclasses.replace(
                source,
                models=source.models or models,
                window=source.window if source.window is not None else policy.interval,
            )
            metric = dataclasses.replace(metric, source=source)
        metrics.append(metric)
    return dataclasses.replace(policy, metrics=tuple(metrics))


# --- the latency objective (docs/objective.md) ----------------------------------------------


def _signal(description: str, required: bool = False) -> Field:
    return Field(Str(f"metric name: {description}"), required=required, nullable=not required)


SIGNALS = Obj(
    m.ObjectiveSignals,
    {
        "arrival_rate": _signal("requests arriving per second", required=True),
        "service_time": _signal(
            "mean seconds a request holds a slot (a histogram mean or a rate ratio)", required=True
        ),
        "service_time_cv": _signal("coefficient of variation of the service time"),
        "in_flight": _signal("requests being served now, all replicas"),
        "queue": _signal("requests waiting for a slot now, all replicas"),
        "observed_wait": _signal("measured wait at objective.quantile, for the online correction"),
    },
    "metrics (names from `metrics:`) that feed the queueing model",
)
assert tuple(SIGNALS.fields) == m.SIGNAL_KEYS


OBJECTIVE = Obj(
    m.Objective,
    {
        "queue_wait": Field(
            Duration("longest wait for a slot, at `quantile`", positive=True), required=True
        ),
        "quantile": Field(Num("share of requests within the objective", gt=0, lt=1)),
        "concurrency": Field(
            Int("requests one replica serves at once (vLLM max_num_seqs)", ge=1, le=1_000_000),
            required=True,
        ),
        "startup": Field(
            Duration("replica start-up time assumed until the daemon has measured one")
        ),
        "forecast": Field(Bool("pre-warm for the hour-of-week demand profile")),
        "service_time_cv": Field(
            Num("service-time variability assumed without a service_time_cv signal", ge=0, le=100)
        ),
        "signals": Field(SIGNALS, required=True),
    },
    # queue_wait is required today; a `ttft` sibling would turn that into an "exactly one of"
    # check here, and the model field is already optional for it.
    "size the deployment from a latency objective with a queueing model",
)


# --- the policy -----------------------------------------------------------------------------


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
    for key, name in signals:
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


POLICY = Obj(
    Builder(m.Policy, _build_policy),
    {
        "name": Field(
            Str(
                "unique policy name; used in metric labels and logs",
                pattern=LABEL_PATTERN,
                pattern_text=LABEL_TEXT,
                max_len=63,
            ),
            required=True,
        ),
        "deployment": Field(DEPLOYMENT, required=True),
        "replicas": Field(REPLICAS, required=True),
        "interval": Field(Duration("evaluation period", positive=True)),
        "metrics": Field(
            ListOf(METRIC, "metrics the replica count follows", min_items=1), required=True
        ),
        "behavior": Field(BEHAVIOR),
        "scale_to_zero": Field(SCALE_TO_ZERO, nullable=True),
        "on_metric_failure": Field(ON_METRIC_FAILURE),
        "on_deployment_failure": Field(ON_DEPLOYMENT_FAILURE),
        "schedules": Field(ListOf(SCHEDULE, "bounds that apply inside cron windows")),
        "cost": Field(COST),
        "dry_run": Field(Bool("decide and report, never call the provider")),
        "paused": Field(Bool("take no action")),
        "gateway": Field(POLICY_GATEWAY, nullable=True),
        "objective": Field(OBJECTIVE, nullable=True),
    },
    "an autoscaling policy for one LLM deployment",
    checks=[
        _check_metric_names,
        _check_objective_signals,
        _check_zero,
        _check_bounds,
        _check_gateway_sources,
    ],
)


# --- the daemon config ----------------------------------------------------------------------


def _check_login(here: Here) -> None:
    if here.ok("type", "login") and here.values.get("login") and here["type"] != "neevcloud":
        here.error(
            ["login"],
            f'login is only supported for type "neevcloud", not {quote(here["type"])}; use token',
        )


LOGIN = Obj(
    m.LoginSpec,
    {
        "url": Field(Url("login endpoint", HTTP), required=True),
        "username": Field(
            Either(
                Str("user name"),
                Secret("user name from env or file"),
                "a user name or {env: NAME} / {file: PATH}",
            ),
            required=True,
        ),
        "password": Field(Secret("password"), required=True),
    },
    "console credentials exchanged for an access token; refreshed on 401",
)

INFERENCE = Obj(
    m.InferenceProfile,
    {
        "token": Field(
            Secret(
                "inference key sent upstream by the gateway (NeevCloud: an sk-nc-* key, not the "
                "API token; NetMind and Nebius-style default to the profile's token)"
            ),
            nullable=True,
        ),
        "base_url": Field(
            Url(
                "OpenAI-compatible base ending in /v1: the shared base of Nebius-style endpoints "
                "(default: the API base_url + /v1); elsewhere used only when a ready deployment "
                "reports no endpoint",
                HTTP,
            ),
            nullable=True,
        ),
    },
    "how the gateway reaches this provider's OpenAI-compatible inference endpoints",
)

PROVIDER = Obj(
    m.ProviderProfile,
    {
        "type": Field(Enum(("neevcloud", "netmind", "nebius"), "provider API"), required=True),
        "base_url": Field(Url("API base URL", HTTP), required=True),
        "org_id": Field(Str("NeevCloud organisation id"), nullable=True),
        "project_id": Field(Str("NeevCloud project id"), nullable=True),
        "token": Field(Secret("API token"), nullable=True),
        "login": Field(LOGIN, nullable=True),
        "timeout": Field(Duration("bound on each API call", positive=True)),
        "max_retries": Field(Int("retry budget per call for temporary errors", ge=0, le=100)),
        "wait_ready_timeout": Field(
            Duration("bound on waiting for ready after create", positive=True)
        ),
        "inference": Field(INFERENCE, nullable=True),
    },
    "a provider account that policies name in deployment.provider",
    checks=[_check_login],
)


def _listen(text: str) -> None:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f'must be HOST:PORT like "127.0.0.1:9464", got {quote(text)}')


def _state_url(text: str) -> None:
    from autoscaler.store.url import parse_store_url

    try:
        parse_store_url(text)
    except ValueError as exc:  # its message names the URL (password redacted) and the forms
        raise ValueError(str(exc).removeprefix("state.url ")) from None


STATE = Obj(
    m.StateConfig,
    {
        "url": Field(
            Str(
                "sqlite:///PATH (embedded) or postgresql://user@host/db (several daemons)",
                pattern=r"(sqlite|postgresql|postgres)://.*",
                pattern_text="a sqlite:// or postgresql:// URL",
                check=_state_url,
            )
        ),
        "lease_ttl": Field(
            Duration("leader lease (PostgreSQL); renewed every ttl/3", positive=True)
        ),
    },
    "durable state and write-ahead intents",
)

HTTP_CONFIG = Obj(
    m.HttpConfig,
    {
        "listen": Field(
            Str("HOST:PORT for /metrics /healthz /readyz /status and admin", check=_listen)
        ),
        "admin_token": Field(Secret("admin endpoints refuse requests without it"), nullable=True),
        "header_timeout": Field(
            Duration("bound on receiving a request head (slow clients are cut)", positive=True)
        ),
        "max_connections": Field(
            Int("open connections at once; past it new ones get 503", ge=1, le=100_000)
        ),
    },
    "the daemon's HTTP endpoint",
)

GATEWAY_CONFIG = Obj(
    m.GatewayConfig,
    {
        "listen": Field(Str("HOST:PORT the OpenAI-compatible API listens on", check=_listen)),
        "api_keys": Field(
            ListOf(
                Secret("a bearer key clients present ({env: NAME} or {file: NAME})"),
                "the API keys clients authenticate with",
                min_items=1,
            ),
            required=True,
        ),
        "max_held": Field(Int("most requests held per model (policy default)", ge=0)),
        "max_hold": Field(
            Duration("longest a request is held per model (policy default)", positive=True)
        ),
        "max_body": Field(Int("largest request body in bytes", ge=1024, le=1024**3)),
        "upstream_timeout": Field(
            Duration("longest a response from the deployment may take", positive=True)
        ),
        "max_connections": Field(
            Int("open client connections at once; past it new ones get 503", ge=1, le=1_000_000)
        ),
        "header_timeout": Field(
            Duration("bound on receiving a request head (slow clients are cut)", positive=True)
        ),
        "poll_interval": Field(
            Duration("how often a held model's deployment is looked up", positive=True)
        ),
        "daemons": Field(
            ListOf(
                Url("a daemon's HTTP base URL, e.g. http://127.0.0.1:9464", HTTP),
                "daemons to ask for activation (a separate gateway process); the leader acts",
            )
        ),
        "admin_token": Field(
            Secret("the daemons' admin token (default: http.admin_token)"), nullable=True
        ),
    },
    "the OpenAI-compatible gateway that holds requests through scale from zero",
)

LOG = Obj(
    m.LogConfig,
    {
        "format": Field(Enum(("json", "console", "auto"), "auto: console on a TTY, else json")),
        "level": Field(Enum(("debug", "info", "warning", "error"), "lowest level logged")),
    },
    "logging",
)

DAEMON = Obj(
    m.DaemonConfig,
    {
        "policies": Field(
            Str("a file, a folder (every *.yaml / *.yml) or a glob; relative to this file"),
            required=True,
        ),
        "providers": Field(
            MapOf(
                PROVIDER,
                "provider profiles by name",
                min_items=1,
                key=Str(pattern=LABEL_PATTERN, pattern_text=LABEL_TEXT, max_len=63),
            ),
            required=True,
        ),
        "state": Field(STATE),
        "http": Field(HTTP_CONFIG),
        "log": Field(LOG),
        "zero_poll_interval": Field(
            Duration("how often activation metrics are read while at zero", positive=True)
        ),
        "dry_run": Field(Bool("decide and report, never call a provider")),
        "shutdown_timeout": Field(
            Duration("deadline for in-flight actions on SIGTERM", positive=True)
        ),
        "gateway": Field(GATEWAY_CONFIG, nullable=True),
    },
    "autoscaler daemon configuration (autoscaler run --config FILE)",
)
