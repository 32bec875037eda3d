"""Metric sources: one dataclass per `source.type`, each key declared once on its field.

`timeout` bounds each read (parsing included); `max_body` caps the bytes an HTTP source reads
from one answer. `SOURCE` picks the variant by `type`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from autoscaler.policy.choices import OneOrList, Tagged
from autoscaler.policy.declare import obj, spec
from autoscaler.policy.errors import quote
from autoscaler.policy.fields import Field, Here, ListOf, MapOf, Obj
from autoscaler.policy.scalars import Bool, Duration, Enum, Int, Num, Secret, Str, Url
from autoscaler.policy.values import MiB, SecretRef, empty

Aggregate = Literal["sum", "avg", "max", "min"]
OnEmpty = Literal["error", "zero"]
HTTP = ("http", "https")


def _regex(text: str) -> None:
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"must be a valid regular expression, got {quote(text)}: {exc}") from None


def _dotted(text: str) -> None:
    if any(part == "" for part in text.split(".")):  # every read would fail
        raise ValueError(
            f'must be a dotted path like "data.queue.depth" (no empty part), got {quote(text)}'
        )


# Keys several sources share, declared once (the defaults stay on each dataclass field).
TIMEOUT = spec(Duration("bound on each read of this source", positive=True))
MAX_BODY = spec(
    Int(
        "bytes read from one answer at most (after decompression); a larger body fails the read",
        ge=1024,
        le=1024 * 1024 * 1024,
    )
)
ON_EMPTY = spec(
    Enum(
        ("error", "zero"), "when the query matches nothing: fail the read (error) or read 0 (zero)"
    )
)
BEARER = spec(Secret("token sent as `Authorization: Bearer`"))


def _type(name: str) -> dict[str, Any]:
    return spec(Enum((name,), "source type"), required=True)


def _source(model: type, description: str, **options: Any) -> Obj:
    """A source's `Obj`: `type` is listed first (it picks the variant)."""
    return obj(model, description, first=("type", *options.pop("first", ())), **options)


@dataclass(frozen=True, slots=True)
class PrometheusSource:
    """Scrape a Prometheus/OpenMetrics text exposition (vLLM or gateway `/metrics`)."""

    # `url:` (one) or `urls:` (several, e.g. one per replica); `url` is folded in by the builder
    urls: tuple[str, ...] = field(
        metadata=spec(
            ListOf(
                Url("a /metrics endpoint", HTTP),
                "several /metrics endpoints (e.g. one per replica); their series are combined",
                min_items=1,
            ),
            required=False,
        )
    )
    metric: str = field(metadata=spec(Str('metric family name, e.g. "vllm:num_requests_waiting"')))
    labels: Mapping[str, str] = field(
        default_factory=empty, metadata=spec(MapOf(Str(min_len=0), "exact label matchers"))
    )
    labels_regex: Mapping[str, str] = field(
        default_factory=empty,
        metadata=spec(MapOf(Str(min_len=0, check=_regex), "fully anchored regex label matchers")),
    )
    aggregate: Aggregate = field(
        default="sum",
        metadata=spec(Enum(("sum", "avg", "max", "min"), "how matching series are combined")),
    )
    # histograms: this quantile; None -> mean over the interval
    quantile: float | None = field(
        default=None,
        metadata=spec(
            Num("histograms: read this quantile (else the mean over the interval)", gt=0, lt=1)
        ),
    )
    on_empty: OnEmpty = field(default="error", metadata=ON_EMPTY)
    timeout: float = field(default=5.0, metadata=TIMEOUT)
    max_body: int = field(default=8 * MiB, metadata=MAX_BODY)  # bytes per scraped exposition
    type: Literal["prometheus"] = field(default="prometheus", metadata=_type("prometheus"))


def _build_prometheus(*, url: str | None = None, urls: tuple[str, ...] = (), **rest: Any) -> Any:
    return PrometheusSource(urls=(url,) if url is not None else urls, **rest)


def _check_prometheus(here: Here) -> None:
    if "url" in here.given and "urls" in here.given:
        here.error(["urls"], 'set either "url" or "urls", not both')
    elif "url" not in here.given and "urls" not in here.given:
        here.sink.error(here.node, here.path, 'missing required key "url" (or "urls")')


PROMETHEUS = _source(
    PrometheusSource,
    "scrape a Prometheus/OpenMetrics text exposition (vLLM or gateway /metrics)",
    build=_build_prometheus,
    extra={"url": Field(Url("the /metrics endpoint to scrape", HTTP))},
    first=("url",),
    checks=[_check_prometheus],
    schema_extra={"oneOf": [{"required": ["url"]}, {"required": ["urls"]}]},
)


@dataclass(frozen=True, slots=True)
class BasicAuth:
    username: str = field(metadata=spec(Str("user name")))
    password: SecretRef = field(metadata=spec(Secret("password")))


BASIC_AUTH = obj(BasicAuth, "HTTP basic authentication")


@dataclass(frozen=True, slots=True)
class PromQLSource:
    """Instant query against a Prometheus server's HTTP API (`/api/v1/query`)."""

    url: str = field(
        metadata=spec(Url("Prometheus server base URL, e.g. http://prometheus:9090", HTTP))
    )
    query: str = field(metadata=spec(Str("PromQL instant query returning one number")))
    bearer_token: SecretRef | None = field(default=None, metadata=BEARER)
    basic_auth: BasicAuth | None = field(default=None, metadata=spec(BASIC_AUTH))
    on_empty: OnEmpty = field(default="error", metadata=ON_EMPTY)
    timeout: float = field(default=5.0, metadata=TIMEOUT)
    max_body: int = field(default=1 * MiB, metadata=MAX_BODY)  # bytes per query answer
    type: Literal["promql"] = field(default="promql", metadata=_type("promql"))


def _check_promql(here: Here) -> None:
    if here.has("bearer_token") and here.has("basic_auth"):
        here.error(["basic_auth"], 'set either "bearer_token" or "basic_auth", not both')


PROMQL = _source(
    PromQLSource,
    "instant query against a Prometheus server's HTTP API (/api/v1/query)",
    checks=[_check_promql],
)


@dataclass(frozen=True, slots=True)
class RedisSource:
    """Queue depth in Redis: list length, stream length, or a consumer group's pending / lag."""

    # redis://host:6379/0 (password in the URL or `password`)
    url: str = field(metadata=spec(Url("redis://host:6379/0", ("redis", "rediss", "unix"))))
    key: str = field(metadata=spec(Str("list or stream key")))
    mode: Literal["list", "stream", "pending", "lag"] = field(
        default="list",
        metadata=spec(
            Enum(
                ("list", "stream", "pending", "lag"),
                "list length, stream length, or a consumer group's pending count / lag",
            )
        ),
    )
    group: str | None = field(
        default=None, metadata=spec(Str("consumer group; required for pending and lag"))
    )
    password: SecretRef | None = field(default=None, metadata=spec(Secret("Redis password")))
    timeout: float = field(default=5.0, metadata=TIMEOUT)
    type: Literal["redis"] = field(default="redis", metadata=_type("redis"))


def _check_redis(here: Here) -> None:
    if here.ok("mode") and here["mode"] in ("pending", "lag") and not here.values.get("group"):
        here.error(["mode"], f'mode "{here["mode"]}" needs "group" (the consumer group name)')


REDIS = _source(RedisSource, "queue depth in Redis", checks=[_check_redis])


@dataclass(frozen=True, slots=True)
class RabbitMQSource:
    """A RabbitMQ queue's ready messages (plus unacknowledged via the management API)."""

    url: str = field(metadata=spec(Url("amqp://user@host:5672/vhost", ("amqp", "amqps"))))
    queue: str = field(metadata=spec(Str("queue name")))
    include_unacked: bool = field(
        default=False, metadata=spec(Bool("also count unacknowledged messages"))
    )
    # http://host:15672, needed for include_unacked
    management_url: str | None = field(
        default=None, metadata=spec(Url("management API, e.g. http://host:15672", HTTP))
    )
    password: SecretRef | None = field(default=None, metadata=spec(Secret("RabbitMQ password")))
    timeout: float = field(default=5.0, metadata=TIMEOUT)
    type: Literal["rabbitmq"] = field(default="rabbitmq", metadata=_type("rabbitmq"))


def _check_rabbitmq(here: Here) -> None:
    if (
        here.ok("include_unacked")
        and here["include_unacked"]
        and not here.values.get("management_url")
    ):
        here.error(
            ["include_unacked"], 'include_unacked needs "management_url" (the management API)'
        )


RABBITMQ = _source(
    RabbitMQSource,
    "a RabbitMQ queue's ready messages",
    checks=[_check_rabbitmq],
)


@dataclass(frozen=True, slots=True)
class NatsSource:
    """A NATS JetStream consumer's pending messages (plus ack-pending, optionally)."""

    url: str = field(metadata=spec(Url("nats://host:4222", ("nats", "tls"))))
    stream: str = field(metadata=spec(Str("JetStream stream")))
    consumer: str = field(metadata=spec(Str("durable consumer")))
    include_ack_pending: bool = field(
        default=False, metadata=spec(Bool("also count messages awaiting ack"))
    )
    token: SecretRef | None = field(default=None, metadata=spec(Secret("NATS auth token")))
    timeout: float = field(default=5.0, metadata=TIMEOUT)
    type: Literal["nats"] = field(default="nats", metadata=_type("nats"))


NATS = _source(NatsSource, "a NATS JetStream consumer's pending messages")


@dataclass(frozen=True, slots=True)
class HttpJsonSource:
    """GET a URL and read a number at a dotted path (`data.queue.depth`, `items.0.n`)."""

    url: str = field(metadata=spec(Url("URL to GET", HTTP)))
    path: str = field(
        metadata=spec(Str("dotted path to the number, e.g. data.queue.depth", check=_dotted))
    )
    headers: Mapping[str, str] = field(
        default_factory=empty, metadata=spec(MapOf(Str(min_len=0), "extra request headers"))
    )
    bearer_token: SecretRef | None = field(default=None, metadata=BEARER)
    timeout: float = field(default=5.0, metadata=TIMEOUT)
    max_body: int = field(default=1 * MiB, metadata=MAX_BODY)  # bytes per JSON document
    type: Literal["http_json"] = field(default="http_json", metadata=_type("http_json"))


HTTP_JSON = _source(HttpJsonSource, "GET a URL and read a number at a dotted path")


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

MODEL_NAME = Str("a model name clients send in the request's `model` field")


@dataclass(frozen=True, slots=True)
class GatewaySource:
    """The gateway's own traffic signals (`autoscaler gateway`), read in-process when the
    gateway runs in the daemon, or from each separate gateway's `/signals` (`urls`), summed."""

    signal: str = field(  # one of GATEWAY_SIGNALS
        metadata=spec(Enum(GATEWAY_SIGNALS, "what to read of the gateway's traffic, per model"))
    )
    # `model:` one name or a list; default: the policy's gateway
    models: tuple[str, ...] = field(
        default=(),
        metadata=spec(
            OneOrList(MODEL_NAME, "the model(s) to read; default: the policy's gateway.model"),
            name="model",
        ),
    )
    # Seconds the windowed signals look back over. None: the policy's interval, so a request
    # between two evaluations is never missed and idle counts from the last request.
    window: float | None = field(
        default=None,
        metadata=spec(
            Duration(
                "how far back the windowed signals look (rates, means, peaks); "
                "default: the policy's interval",
                positive=True,
            )
        ),
    )
    # separate gateway processes' base URLs; empty: in-process
    urls: tuple[str, ...] = field(
        default=(),
        metadata=spec(
            ListOf(
                Url("a gateway base URL, e.g. http://127.0.0.1:8080", HTTP),
                "separate gateway processes, summed; empty: the gateway inside this daemon",
            )
        ),
    )
    timeout: float = field(default=5.0, metadata=TIMEOUT)
    type: Literal["gateway"] = field(default="gateway", metadata=_type("gateway"))


GATEWAY_SOURCE = _source(
    GatewaySource, "the gateway's traffic for some models (autoscaler gateway)", first=("type",)
)

MetricSource = (
    PrometheusSource
    | PromQLSource
    | RedisSource
    | RabbitMQSource
    | NatsSource
    | HttpJsonSource
    | GatewaySource
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
SOURCE_TYPES: tuple[str, ...] = tuple(SOURCE.variants)
