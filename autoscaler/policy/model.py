"""Typed, immutable policy model: what a validated policy file becomes.

Only data lives here: frozen, slotted dataclasses mirroring
`shared/design/policy-example.yaml` field for field (those names are a contract).
Loading and validation live in `autoscaler.policy.loader`; nothing here does I/O.
Durations are float seconds. Mappings are read-only (`MappingProxyType`).

The decision core reads these objects; sources and providers read their own parts
(`MetricSource` specs, `Deployment.create`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    """EMPTY as a dataclass default: Python 3.11 refuses a mappingproxy as a plain default
    (it is unhashable there), so fields take it through a factory."""
    return EMPTY


TargetType = Literal["value", "average_value", "utilization"]
Aggregate = Literal["sum", "avg", "max", "min"]
OnEmpty = Literal["error", "zero"]
Select = Literal["max", "min", "disabled"]
RatePolicyType = Literal["replicas", "percent"]


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a credential comes from: an environment variable or a file.

    A relative `file` is looked up in systemd's `$CREDENTIALS_DIRECTORY` first, then
    `/run/secrets`. Resolution (I/O) lives in `autoscaler.secrets`; this is only the reference.
    """

    env: str | None = None
    file: str | None = None


# --- metric sources -------------------------------------------------------------------------
# One spec class per `source.type`. `timeout` bounds each read (parsing included); `max_body`
# caps the bytes an HTTP source reads from one answer.
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class PrometheusSource:
    """Scrape a Prometheus/OpenMetrics text exposition (vLLM or gateway `/metrics`)."""

    urls: tuple[str, ...]  # `url:` (one) or `urls:` (several, e.g. one per replica)
    metric: str  # family name, e.g. "vllm:num_requests_waiting"
    labels: Mapping[str, str] = field(default_factory=_empty)  # exact matchers
    labels_regex: Mapping[str, str] = field(default_factory=_empty)  # fully anchored regex matchers
    aggregate: Aggregate = "sum"
    quantile: float | None = None  # histograms: this quantile; None -> mean over the interval
    on_empty: OnEmpty = "error"
    timeout: float = 5.0
    max_body: int = 8 * MiB  # bytes per scraped exposition
    type: Literal["prometheus"] = "prometheus"


@dataclass(frozen=True, slots=True)
class BasicAuth:
    username: str
    password: SecretRef


@dataclass(frozen=True, slots=True)
class PromQLSource:
    """Instant query against a Prometheus server's HTTP API (`/api/v1/query`)."""

    url: str  # server base URL, e.g. http://prometheus:9090
    query: str
    bearer_token: SecretRef | None = None
    basic_auth: BasicAuth | None = None
    on_empty: OnEmpty = "error"
    timeout: float = 5.0
    max_body: int = 1 * MiB  # bytes per query answer
    type: Literal["promql"] = "promql"


@dataclass(frozen=True, slots=True)
class RedisSource:
    """Queue depth in Redis: list length, stream length, or a consumer group's pending / lag."""

    url: str  # redis://host:6379/0 (password in the URL or `password`)
    key: str
    mode: Literal["list", "stream", "pending", "lag"] = "list"
    group: str | None = None  # required for pending and lag
    password: SecretRef | None = None
    timeout: float = 5.0
    type: Literal["redis"] = "redis"


@dataclass(frozen=True, slots=True)
class RabbitMQSource:
    """A RabbitMQ queue's ready messages (plus unacknowledged via the management API)."""

    url: str  # amqp://user:pass@host:5672/vhost
    queue: str
    include_unacked: bool = False
    management_url: str | None = None  # http://host:15672, needed for include_unacked
    password: SecretRef | None = None
    timeout: float = 5.0
    type: Literal["rabbitmq"] = "rabbitmq"


@dataclass(frozen=True, slots=True)
class NatsSource:
    """A NATS JetStream consumer's pending messages (plus ack-pending, optionally)."""

    url: str  # nats://host:4222
    stream: str
    consumer: str
    include_ack_pending: bool = False
    token: SecretRef | None = None
    timeout: float = 5.0
    type: Literal["nats"] = "nats"


@dataclass(frozen=True, slots=True)
class HttpJsonSource:
    """GET a URL and read a number at a dotted path (`data.queue.depth`, `items.0.n`)."""

    url: str
    path: str
    headers: Mapping[str, str] = field(default_factory=_empty)
    bearer_token: SecretRef | None = None
    timeout: float = 5.0
    max_body: int = 1 * MiB  # bytes per JSON document
    type: Literal["http_json"] = "http_json"


GATEWAY_SIGNALS: tuple[str, ...] = (
    "held",
    "in_flight",
    "concurrency",
    "arrival_rate",
    "ttft",
    "duration",
    "prompt_tokens_rate",
    "completion_tokens_rate",
)
"""What a `gateway` source reads, per model (summed over the source's models and gateways):
`held` requests waiting for their deployment now; `in_flight` requests being answered now;
`concurrency` the peak of held + in flight over `window`; `arrival_rate` requests per second
over `window`; `ttft` / `duration` mean seconds to first byte / to the end over `window`;
`*_tokens_rate` tokens per second from the responses' `usage` over `window`."""


@dataclass(frozen=True, slots=True)
class GatewaySource:
    """The gateway's own traffic signals (`autoscaler gateway`), read in-process when the
    gateway runs in the daemon, or from each separate gateway's `/signals` (`urls`), summed."""

    signal: str  # one of GATEWAY_SIGNALS
    models: tuple[str, ...] = ()  # `model:` one name or a list; default: the policy's gateway
    # Seconds the windowed signals look back over. None: the policy's interval, so a request
    # between two evaluations is never missed and idle counts from the last request.
    window: float | None = None
    urls: tuple[str, ...] = ()  # separate gateway processes' base URLs; empty: in-process
    timeout: float = 5.0
    type: Literal["gateway"] = "gateway"


MetricSource = (
    PrometheusSource
    | PromQLSource
    | RedisSource
    | RabbitMQSource
    | NatsSource
    | HttpJsonSource
    | GatewaySource
)
SOURCE_TYPES: tuple[str, ...] = (
    "prometheus",
    "promql",
    "redis",
    "rabbitmq",
    "nats",
    "http_json",
    "gateway",
)


# --- policy ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    type: TargetType
    value: float  # > 0; per replica for average_value, a ratio for utilization


@dataclass(frozen=True, slots=True)
class Metric:
    name: str  # unique within the policy; referenced by activation and replay observations
    source: MetricSource
    # None: an input only (named in `objective.signals`); the HPA recommend stage skips it.
    target: Target | None = None


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str  # a provider profile name from the daemon config
    name: str  # identity at the provider across delete / recreate
    create: Mapping[str, Any] | None = None  # provider-specific spec used to deploy again
    # The provider API `create` is written for, when the policy says (validate without a
    # daemon config); the daemon checks it against its profile's type.
    provider_type: str | None = None


@dataclass(frozen=True, slots=True)
class Replicas:
    min: int
    max: int


@dataclass(frozen=True, slots=True)
class Tolerance:
    up: float = 0.1
    down: float = 0.1


@dataclass(frozen=True, slots=True)
class RatePolicy:
    type: RatePolicyType
    value: int  # replicas, or percent of the count at the start of the period
    period: float  # seconds


@dataclass(frozen=True, slots=True)
class ScalingRules:
    stabilization_window: float
    cooldown: float = 0.0  # min seconds after the last action before acting in this direction
    policies: tuple[RatePolicy, ...] = ()
    select: Select = "max"


def default_scale_up() -> ScalingRules:
    """Kubernetes HPA defaults: no window; max of +4 pods or +100% per 15 s."""
    return ScalingRules(
        stabilization_window=0.0,
        policies=(RatePolicy("replicas", 4, 15.0), RatePolicy("percent", 100, 15.0)),
        select="max",
    )


def default_scale_down() -> ScalingRules:
    """Kubernetes HPA defaults: 300 s window; up to -100% per 15 s."""
    return ScalingRules(
        stabilization_window=300.0,
        policies=(RatePolicy("percent", 100, 15.0),),
        select="max",
    )


@dataclass(frozen=True, slots=True)
class Panic:
    threshold: float = 2.0  # instant recommendation >= threshold x ready replicas
    hold: float = 60.0  # no scale-down for this long after the last panic


@dataclass(frozen=True, slots=True)
class Behavior:
    tolerance: Tolerance = field(default_factory=Tolerance)
    scale_up: ScalingRules = field(default_factory=default_scale_up)
    scale_down: ScalingRules = field(default_factory=default_scale_down)
    panic: Panic | None = None


@dataclass(frozen=True, slots=True)
class Activation:
    metric: str
    threshold: float = 0.0


@dataclass(frozen=True, slots=True)
class ScaleToZero:
    after: float = 900.0
    activation: tuple[Activation, ...] = ()


@dataclass(frozen=True, slots=True)
class OnMetricFailure:
    after: int = 3
    action: Literal["hold", "replicas"] = "hold"
    replicas: int | None = None  # the fallback count when action == "replicas"


@dataclass(frozen=True, slots=True)
class OnDeploymentFailure:
    """What to do when the provider reports the deployment `failed` (an addition to the
    reference shape): `report` only, or delete and `recreate` with exponential backoff."""

    action: Literal["report", "recreate"] = "report"
    backoff: float = 60.0
    max_backoff: float = 1800.0


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str  # five-field crontab: minute hour day month day_of_week
    duration: float
    timezone: str = "UTC"
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True, slots=True)
class Cost:
    replica_hourly_usd: float | None = None
    max_hourly_usd: float | None = None


@dataclass(frozen=True, slots=True)
class PolicyGateway:
    """The model names the gateway routes to this policy's deployment, and its hold bounds
    (None: the gateway section's defaults)."""

    models: tuple[str, ...]
    max_held: int | None = None  # most requests held at once for these models
    max_hold: float | None = None  # longest a request is held, seconds


@dataclass(frozen=True, slots=True)
class ObjectiveSignals:
    """Which policy metrics feed the queueing model (names from `metrics:`), see
    docs/objective.md. Units: requests/s, seconds, requests."""

    arrival_rate: str  # requests arriving per second (a counter's rate)
    service_time: str  # mean seconds one request holds a slot (a histogram mean or rate ratio)
    service_time_cv: str | None = None  # coefficient of variation of the service time
    in_flight: str | None = None  # requests being served now (all replicas)
    queue: str | None = None  # requests waiting for a slot now (all replicas)
    observed_wait: str | None = None  # the wait at `quantile` as measured, for the correction

    def names(self) -> tuple[tuple[str, str], ...]:
        """(field, metric name) of every signal that is set."""
        out = []
        for key in SIGNAL_KEYS:
            value = getattr(self, key)
            if value is not None:
                out.append((key, value))
        return tuple(out)


SIGNAL_KEYS: tuple[str, ...] = (
    "arrival_rate",
    "service_time",
    "service_time_cv",
    "in_flight",
    "queue",
    "observed_wait",
)
REQUIRED_SIGNALS: tuple[str, ...] = ("arrival_rate", "service_time")


@dataclass(frozen=True, slots=True)
class Objective:
    """A latency objective: size the deployment so that the wait for a slot stays within
    `queue_wait` at `quantile`. The core's model lives in `autoscaler.core.objective`.

    Only `queue_wait` exists today; a time-to-first-token objective would be a sibling field
    (`ttft`) with "exactly one of" checked by the policy tables.
    """

    signals: ObjectiveSignals
    concurrency: int  # the replica's slots (vLLM max_num_seqs)
    queue_wait: float | None = None  # seconds a request may wait for a slot
    quantile: float = 0.99  # of requests within `queue_wait`
    startup: float = 180.0  # start-up seconds assumed until the daemon has measured one
    forecast: bool = True  # seasonal pre-warm (hour-of-week profile of the arrival rate)
    service_time_cv: float = 1.0  # variability assumed when no `service_time_cv` signal


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    deployment: Deployment
    replicas: Replicas
    metrics: tuple[Metric, ...]
    interval: float = 15.0
    behavior: Behavior = field(default_factory=Behavior)
    scale_to_zero: ScaleToZero | None = None
    on_metric_failure: OnMetricFailure = field(default_factory=OnMetricFailure)
    on_deployment_failure: OnDeploymentFailure = field(default_factory=OnDeploymentFailure)
    schedules: tuple[Schedule, ...] = ()
    cost: Cost = field(default_factory=Cost)
    dry_run: bool = False
    paused: bool = False
    source_file: str | None = None  # where it was loaded from, for messages
    gateway: PolicyGateway | None = None  # models the gateway routes here
    objective: Objective | None = None  # latency objective (docs/objective.md)

    def metric(self, name: str) -> Metric | None:
        for m in self.metrics:
            if m.name == name:
                return m
        return None


# --- daemon configuration (`autoscaler run --config FILE`) ------------------------------------
# Mirrors `shared/design/daemon-config-example.yaml`.


@dataclass(frozen=True, slots=True)
class LoginSpec:
    """Console credentials exchanged for an access token (NeevCloud tenant login)."""

    url: str
    username: SecretRef | str
    password: SecretRef


@dataclass(frozen=True, slots=True)
class InferenceProfile:
    """How the gateway reaches a provider's OpenAI-compatible inference endpoints."""

    token: SecretRef | None = None  # the inference key (NeevCloud: sk-nc-*, not the API token)
    base_url: str | None = None  # Nebius-style shared base; elsewhere when none is reported


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    name: str  # the key under `providers:`
    type: Literal["neevcloud", "netmind", "nebius"]
    base_url: str
    org_id: str | None = None  # NeevCloud
    project_id: str | None = None  # NeevCloud
    token: SecretRef | None = None
    login: LoginSpec | None = None
    timeout: float = 10.0
    max_retries: int = 4  # retry budget per call for temporary errors
    wait_ready_timeout: float = 1800.0  # bound on waiting for `ready` after create
    inference: InferenceProfile | None = None  # the gateway's way to the deployments


@dataclass(frozen=True, slots=True)
class StateConfig:
    url: str = "sqlite:///var/lib/autoscaler/state.db"
    lease_ttl: float = 15.0  # leader lease (PostgreSQL); renewed every ttl/3


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: str = "127.0.0.1:9464"
    admin_token: SecretRef | None = None
    header_timeout: float = 10.0  # seconds a request head may take (slow clients are cut)
    max_connections: int = 256  # open connections at once; past it: 503 and close


@dataclass(frozen=True, slots=True)
class LogConfig:
    format: Literal["json", "console", "auto"] = "auto"  # auto: console on a TTY, else json
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """`gateway:` in the daemon config: the OpenAI-compatible front door (`autoscaler.gateway`),
    inside `autoscaler run` or as its own process (`autoscaler gateway --config FILE`)."""

    listen: str = "127.0.0.1:8080"  # loopback by default: exposing it is a decision
    api_keys: tuple[SecretRef, ...] = ()  # bearer keys clients present
    max_held: int = 100  # per model; past it a request is refused (503) at once
    max_hold: float = 600.0  # seconds; Nebius-style start-up takes 10-15 min: raise it there
    max_body: int = 4 * 1024 * 1024  # bytes of a request body (chat histories fit)
    upstream_timeout: float = 600.0  # seconds a response may take (long generations)
    max_connections: int = 1024  # open client connections at once; past it: 503 and close
    header_timeout: float = 10.0  # seconds a request head may take (slow clients are cut)
    poll_interval: float = 1.0  # how often a held model's deployment is looked up
    daemons: tuple[str, ...] = ()  # daemon base URLs (separate process): activation goes there
    admin_token: SecretRef | None = None  # for `daemons`; default: http.admin_token


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    policies: str  # a file, a folder (every *.yaml / *.yml) or a glob; relative to the config
    providers: Mapping[str, ProviderProfile]
    state: StateConfig = field(default_factory=StateConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    log: LogConfig = field(default_factory=LogConfig)
    zero_poll_interval: float = 2.0
    dry_run: bool = False
    shutdown_timeout: float = 30.0  # deadline for in-flight actions on SIGTERM
    source_file: str | None = None
    gateway: GatewayConfig | None = None  # the gateway runs in the daemon when set
