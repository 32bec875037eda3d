"""The gateway routing of a policy and its latency objective (docs/objective.md).

Each key is declared once on its dataclass field (`declare.spec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autoscaler.policy.choices import OneOrList
from autoscaler.policy.declare import obj, spec
from autoscaler.policy.errors import quote
from autoscaler.policy.fields import Here
from autoscaler.policy.scalars import Bool, Duration, Int, Num, Str
from autoscaler.policy.sections.sources import MODEL_NAME


@dataclass(frozen=True, slots=True)
class PolicyGateway:
    """The model names the gateway routes to this policy's deployment, and its hold bounds
    (None: the gateway section's defaults)."""

    models: tuple[str, ...] = field(
        metadata=spec(
            OneOrList(MODEL_NAME, "the model name(s) the gateway routes to this deployment"),
            name="model",
        )
    )
    max_held: int | None = field(  # most requests held at once for these models
        default=None,
        metadata=spec(Int("most requests held at once while the deployment is not ready", ge=0)),
    )
    max_hold: float | None = field(  # longest a request is held, seconds
        default=None,
        metadata=spec(Duration("longest a request is held before a 503", positive=True)),
    )


def _check_models(here: Here) -> None:
    if not here.ok("model"):
        return
    seen: set[str] = set()
    for index, model in enumerate(here["model"]):
        if model in seen:
            here.error(["model", index], f"lists model {quote(model)} twice")
        seen.add(model)


POLICY_GATEWAY = obj(
    PolicyGateway,
    "route these models through the gateway to this deployment",
    checks=[_check_models],
)


def _signal(description: str) -> dict[str, Any]:
    """A signal names a metric of the policy."""
    return spec(Str(f"metric name: {description}"))


@dataclass(frozen=True, slots=True)
class ObjectiveSignals:
    """Which policy metrics feed the queueing model (names from `metrics:`), see
    docs/objective.md. Units: requests/s, seconds, requests."""

    arrival_rate: str = field(metadata=_signal("requests arriving per second"))
    service_time: str = field(
        metadata=_signal("mean seconds a request holds a slot (a histogram mean or a rate ratio)")
    )
    service_time_cv: str | None = field(
        default=None, metadata=_signal("coefficient of variation of the service time")
    )
    in_flight: str | None = field(
        default=None, metadata=_signal("requests being served now, all replicas")
    )
    queue: str | None = field(
        default=None, metadata=_signal("requests waiting for a slot now, all replicas")
    )
    observed_wait: str | None = field(
        default=None,
        metadata=_signal("measured wait at objective.quantile, for the online correction"),
    )

    def names(self) -> tuple[tuple[str, str], ...]:
        """(field, metric name) of every signal that is set."""
        out = []
        for name in SIGNAL_KEYS:
            value = getattr(self, name)
            if value is not None:
                out.append((name, value))
        return tuple(out)


SIGNALS = obj(ObjectiveSignals, "metrics (names from `metrics:`) that feed the queueing model")
SIGNAL_KEYS: tuple[str, ...] = tuple(SIGNALS.fields)
REQUIRED_SIGNALS: tuple[str, ...] = tuple(k for k, f in SIGNALS.fields.items() if f.required)


@dataclass(frozen=True, slots=True)
class Objective:
    """A latency objective: size the deployment so that the wait for a slot stays within
    `queue_wait` at `quantile`. The core's model lives in `autoscaler.core.objective`.

    Only `queue_wait` exists today; a time-to-first-token objective would be a sibling field
    (`ttft`): `queue_wait` would then lose `required=True` for an "exactly one of" check.
    """

    signals: ObjectiveSignals = field(metadata=spec(SIGNALS))
    concurrency: int = field(  # the replica's slots (vLLM max_num_seqs)
        metadata=spec(
            Int("requests one replica serves at once (vLLM max_num_seqs)", ge=1, le=1_000_000)
        )
    )
    queue_wait: float | None = field(  # seconds a request may wait for a slot
        default=None,
        metadata=spec(
            Duration("longest wait for a slot, at `quantile`", positive=True), required=True
        ),
    )
    quantile: float = field(  # of requests within `queue_wait`
        default=0.99, metadata=spec(Num("share of requests within the objective", gt=0, lt=1))
    )
    startup: float = field(  # assumed until the daemon has measured one
        default=180.0,
        metadata=spec(Duration("replica start-up time assumed until the daemon has measured one")),
    )
    forecast: bool = field(  # seasonal pre-warm (hour-of-week profile of the arrival rate)
        default=True, metadata=spec(Bool("pre-warm for the hour-of-week demand profile"))
    )
    service_time_cv: float = field(  # variability assumed when no `service_time_cv` signal
        default=1.0,
        metadata=spec(
            Num("service-time variability assumed without a service_time_cv signal", ge=0, le=100)
        ),
    )


OBJECTIVE = obj(
    Objective,
    "size the deployment from a latency objective with a queueing model",
    first=("queue_wait", "quantile", "concurrency", "startup", "forecast", "service_time_cv"),
)
