"""How a policy scales: HPA behavior, scale to zero, failure handling, schedules and cost.

Each key is declared once on its dataclass field (`declare.spec`); the `Obj`s below are
derived from the classes, with the checks that need more than one key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from autoscaler import cron
from autoscaler.policy.choices import Either
from autoscaler.policy.declare import obj, spec
from autoscaler.policy.errors import quote
from autoscaler.policy.fields import Here, ListOf
from autoscaler.policy.scalars import INVALID, Duration, Enum, Int, Num, Str
from autoscaler.textcut import cut

RatePolicyType = Literal["replicas", "percent"]
Select = Literal["max", "min", "disabled"]
MAX_REPLICAS = 10_000
"""Far above any real GPU deployment; keeps replica arithmetic in exact float range."""


def _band(description: str) -> dict[str, Any]:
    return spec(Num(description, ge=0, lt=1))


@dataclass(frozen=True, slots=True)
class Tolerance:
    up: float = field(default=0.1, metadata=_band("band above the target"))
    down: float = field(default=0.1, metadata=_band("band below the target"))


TOLERANCE = Either(
    Num("relative band around the target inside which nothing changes", ge=0, lt=1),
    obj(Tolerance, "separate bands for scaling up and down"),
    "a number in [0, 1) or {up, down}",
    from_scalar=lambda v: Tolerance(up=v, down=v),
)


@dataclass(frozen=True, slots=True)
class RatePolicy:
    type: RatePolicyType = field(
        metadata=spec(
            Enum(
                ("replicas", "percent"),
                "replicas or percent of the count at the start of the period",
            )
        )
    )
    # replicas, or percent of the count at the start of the period
    value: int = field(
        metadata=spec(Int("how many replicas (or percent) per period", gt=0, le=1_000_000))
    )
    period: float = field(  # seconds
        metadata=spec(Duration("the period the limit applies to", positive=True))
    )


RATE_POLICY = obj(RatePolicy, "an HPA rate policy")


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """One direction of HPA behavior; descriptions and defaults per direction are given by
    `scaling_rules` (scale_up and scale_down share this class)."""

    stabilization_window: float = field(metadata=spec(Duration("stabilization window")))
    # min seconds after the last action before acting in this direction
    cooldown: float = field(default=0.0, metadata=spec(Duration("cooldown")))
    policies: tuple[RatePolicy, ...] = field(
        default=(),
        metadata=spec(ListOf(RATE_POLICY, "rate limits (HPA scaling policies)", min_items=1)),
    )
    select: Select = field(
        default="max", metadata=spec(Enum(("max", "min", "disabled"), "which policy wins"))
    )


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


def scaling_rules(direction: str, defaults: ScalingRules) -> Any:
    """The `Obj` of `behavior.scale_<direction>`: the HPA defaults of that direction."""
    toward = "lowest" if direction == "up" else "highest"
    return obj(
        ScalingRules,
        f"how fast to scale {direction} (HPA behavior)",
        defaults={
            "stabilization_window": defaults.stabilization_window,
            "cooldown": defaults.cooldown,
            "policies": lambda: defaults.policies,
            "select": defaults.select,
        },
        descriptions={
            "stabilization_window": f"scale {direction} to the {toward} recommendation in "
            "this window",
            "cooldown": f"minimum time after the last action before a scale {direction}",
            "select": f"which policy wins; disabled: never scale {direction}",
        },
    )


@dataclass(frozen=True, slots=True)
class Panic:
    threshold: float = field(  # instant recommendation >= threshold x ready replicas
        default=2.0,
        metadata=spec(Num("instant recommendation >= threshold x ready replicas", gt=1)),
    )
    hold: float = field(  # no scale-down for this long after the last panic
        default=60.0, metadata=spec(Duration("no scale down for this long after the last panic"))
    )


PANIC = obj(Panic, "Knative-style burst handling")


@dataclass(frozen=True, slots=True)
class Behavior:
    tolerance: Tolerance = field(default_factory=Tolerance, metadata=spec(TOLERANCE))
    scale_up: ScalingRules = field(
        default_factory=default_scale_up, metadata=spec(scaling_rules("up", default_scale_up()))
    )
    scale_down: ScalingRules = field(
        default_factory=default_scale_down,
        metadata=spec(scaling_rules("down", default_scale_down())),
    )
    panic: Panic | None = field(default=None, metadata=spec(PANIC))


BEHAVIOR = obj(Behavior, "HPA behavior: tolerance, stabilization, rate limits, cooldowns, panic")


# --- zero, failures, schedules, cost --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Activation:
    metric: str = field(metadata=spec(Str("a metric name of this policy")))
    threshold: float = field(
        default=0.0, metadata=spec(Num("active while the metric is above this", ge=0))
    )


ACTIVATION = obj(Activation, "a metric that keeps the deployment alive (and wakes it from zero)")


@dataclass(frozen=True, slots=True)
class ScaleToZero:
    after: float = field(
        default=900.0,
        metadata=spec(
            Duration(
                "idle this long (every activation metric <= threshold) -> delete", positive=True
            )
        ),
    )
    activation: tuple[Activation, ...] = field(
        default=(),
        metadata=spec(
            ListOf(
                ACTIVATION,
                "metrics that decide idle vs active; at least one, or nothing "
                "would ever wake the deployment",
                min_items=1,
            ),
            required=True,
        ),
    )


SCALE_TO_ZERO = obj(
    ScaleToZero, "delete the deployment when idle; used only when replicas.min is 0"
)


@dataclass(frozen=True, slots=True)
class _Fallback:
    """`action: {replicas: N}` before it becomes OnMetricFailure fields."""

    replicas: int = field(metadata=spec(Int("fallback replica count", ge=0, le=MAX_REPLICAS)))


ACTION = Either(
    Enum(("hold",), "keep the current count", expected='"hold" or {replicas: N}'),
    obj(_Fallback, "go to a fallback replica count"),
    '"hold" or {replicas: N}',
)


@dataclass(frozen=True, slots=True)
class OnMetricFailure:
    after: int = field(
        default=3,
        metadata=spec(Int("consecutive evaluations with a failed metric", ge=1, le=1_000_000)),
    )
    # the file's `action` is "hold" or {replicas: N}; the builder splits it into these two
    action: Literal["hold", "replicas"] = field(default="hold", metadata=spec(ACTION))
    replicas: int | None = None  # the fallback count when action == "replicas"


def _build_on_metric_failure(*, after: int = 3, action: Any = "hold") -> OnMetricFailure:
    if isinstance(action, _Fallback):
        return OnMetricFailure(after=after, action="replicas", replicas=action.replicas)
    return OnMetricFailure(after=after, action="hold")


ON_METRIC_FAILURE = obj(
    OnMetricFailure, "what to do when metrics keep failing", build=_build_on_metric_failure
)


@dataclass(frozen=True, slots=True)
class OnDeploymentFailure:
    """What to do when the provider reports the deployment `failed` (an addition to the
    reference shape): `report` only, or delete and `recreate` with exponential backoff."""

    action: Literal["report", "recreate"] = field(
        default="report",
        metadata=spec(Enum(("report", "recreate"), "report only, or delete and recreate")),
    )
    backoff: float = field(
        default=60.0, metadata=spec(Duration("first wait before recreating", positive=True))
    )
    max_backoff: float = field(
        default=1800.0,
        metadata=spec(Duration("longest wait between recreate attempts", positive=True)),
    )


def _check_backoff(here: Here) -> None:
    if here.ok("backoff", "max_backoff") and here["backoff"] > here["max_backoff"]:
        here.error(
            ["backoff"],
            f"backoff ({here['backoff']:g}s) must be <= max_backoff ({here['max_backoff']:g}s)",
        )


ON_DEPLOYMENT_FAILURE = obj(
    OnDeploymentFailure,
    "what to do when the provider reports the deployment failed",
    checks=[_check_backoff],
)


def _timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except Exception:
        raise ValueError(
            f'must be an IANA time zone like "UTC" or "Asia/Kolkata", got {quote(name)}'
        ) from None


def _bound(description: str, low: int) -> dict[str, Any]:
    return spec(Int(description, ge=low, le=MAX_REPLICAS))


@dataclass(frozen=True, slots=True)
class Schedule:
    # five-field crontab: minute hour day month day_of_week
    cron: str = field(metadata=spec(Str("window start, five-field crontab")))
    duration: float = field(metadata=spec(Duration("how long the window lasts", positive=True)))
    timezone: str = field(
        default="UTC",
        metadata=spec(Str("IANA time zone of the cron expression", check=_timezone)),
    )
    min: int | None = field(
        default=None, metadata=_bound("lowest replica count inside the window", 0)
    )
    max: int | None = field(
        default=None, metadata=_bound("highest replica count inside the window", 1)
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
        why = cut(str(exc), 200)  # it may echo expr
        return (
            f"must be a five-field crontab expression (minute hour day month day_of_week), "
            f"got {quote(expr)}: {why}"
        )
    if first == math.inf:
        return f"cron expression {quote(expr)} never fires (no such date)"
    return None


_Y2000 = datetime(2000, 1, 1, tzinfo=UTC).timestamp()

SCHEDULE = obj(Schedule, "replica bounds that apply inside a cron window", checks=[_check_schedule])


@dataclass(frozen=True, slots=True)
class Cost:
    # Bounded so that max / replica (the replicas the cap pays for) is a finite number: with
    # 1.0e-300 and 1.0e+300 it was inf and both this check and the core's clamp crashed.
    replica_hourly_usd: float | None = field(
        default=None,
        metadata=spec(Num("price of one replica per hour", ge=0.0001, le=1_000_000)),
    )
    max_hourly_usd: float | None = field(
        default=None, metadata=spec(Num("never scale past this hourly spend", gt=0, le=1e9))
    )


COST = obj(Cost, "cost reporting and cap")
