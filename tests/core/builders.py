"""Policy and observation builders for the core tests, plus Hypothesis strategies.

Policies are built from the model directly (not YAML) so the core tests do not depend on the
loader; `policy()` takes the few knobs a table test cares about and defaults the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from autoscaler.core import CoreState, Observation, initial_state
from autoscaler.core.clamp import bounds
from autoscaler.core.proposal import Context, Proposal, Recommendation
from autoscaler.core.types import DeploymentState
from autoscaler.policy.model import (
    Activation,
    Behavior,
    Cost,
    Deployment,
    Metric,
    OnDeploymentFailure,
    OnMetricFailure,
    Panic,
    Policy,
    RatePolicy,
    RedisSource,
    Replicas,
    ScaleToZero,
    ScalingRules,
    Schedule,
    Target,
    Tolerance,
    default_scale_down,
    default_scale_up,
)

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z, a Tuesday
SOURCE = RedisSource(url="redis://127.0.0.1:6379/0", key="jobs")
CREATE = {"catalog_id": "m", "region": "r"}


def metric(name: str = "waiting", kind: str = "average_value", target: float = 5.0) -> Metric:
    return Metric(name, SOURCE, Target(kind, target))  # type: ignore[arg-type]


def rules(
    window: float = 0.0,
    policies: tuple[tuple[str, int, float], ...] = (),
    select: str = "max",
    cooldown: float = 0.0,
) -> ScalingRules:
    return ScalingRules(
        stabilization_window=window,
        cooldown=cooldown,
        policies=tuple(RatePolicy(t, v, p) for t, v, p in policies),  # type: ignore[arg-type]
        select=select,  # type: ignore[arg-type]
    )


def policy(
    metrics: tuple[Metric, ...] | None = None,
    min: int = 1,
    max: int = 10,
    tolerance: Tolerance | None = None,
    scale_up: ScalingRules | None = None,
    scale_down: ScalingRules | None = None,
    panic: Panic | None = None,
    scale_to_zero: ScaleToZero | None = None,
    on_metric_failure: OnMetricFailure | None = None,
    on_deployment_failure: OnDeploymentFailure | None = None,
    schedules: tuple[Schedule, ...] = (),
    cost: Cost | None = None,
    create: Mapping[str, Any] | None = CREATE,
    paused: bool = False,
) -> Policy:
    return Policy(
        name="p",
        deployment=Deployment("sim", "d", create),
        replicas=Replicas(min, max),
        metrics=metrics if metrics is not None else (metric(),),
        behavior=Behavior(
            tolerance=tolerance or Tolerance(),
            scale_up=scale_up or default_scale_up(),
            scale_down=scale_down or default_scale_down(),
            panic=panic,
        ),
        scale_to_zero=scale_to_zero,
        on_metric_failure=on_metric_failure or OnMetricFailure(),
        on_deployment_failure=on_deployment_failure or OnDeploymentFailure(),
        schedules=schedules,
        cost=cost or Cost(),
        paused=paused,
    )


def ready(replicas: int, ready_replicas: int | None = None, **metrics: float | None) -> Observation:
    return Observation(DeploymentState("ready", replicas, ready_replicas), metrics)


def absent(**metrics: float | None) -> Observation:
    return Observation(DeploymentState("absent", 0), metrics)


# --- Hypothesis strategies -------------------------------------------------------------------

METRIC_NAMES = ("waiting", "kv", "backlog")
SCHEDULES = (
    Schedule("0 8 * * 1-5", 36000.0, "Asia/Kolkata", min=2),
    Schedule("*/30 * * * *", 600.0, "UTC", max=3),
    Schedule("0 */2 * * *", 3600.0, "America/New_York", min=4, max=6),
)


@st.composite
def scaling_rules(draw: st.DrawFn, up: bool) -> ScalingRules:
    n = draw(st.integers(0, 2))
    pols = tuple(
        RatePolicy(
            draw(st.sampled_from(("replicas", "percent"))),
            draw(st.integers(1, 200 if up else 100)),
            draw(st.sampled_from((15.0, 30.0, 60.0, 120.0))),
        )
        for _ in range(n)
    )
    return ScalingRules(
        stabilization_window=draw(st.sampled_from((0.0, 15.0, 60.0, 300.0))),
        cooldown=draw(st.sampled_from((0.0, 0.0, 30.0, 120.0))),
        policies=pols,
        select=draw(st.sampled_from(("max", "max", "min", "disabled"))),
    )


@st.composite
def policies(draw: st.DrawFn, schedules: bool = True, zero: bool | None = None) -> Policy:
    count = draw(st.integers(1, 3))
    metrics = tuple(
        Metric(
            METRIC_NAMES[i],
            SOURCE,
            Target(
                draw(st.sampled_from(("value", "average_value", "utilization"))),
                draw(st.sampled_from((0.5, 0.8, 1.0, 5.0, 20.0))),
            ),
        )
        for i in range(count)
    )
    use_zero = draw(st.booleans()) if zero is None else zero
    lo = 0 if use_zero else draw(st.integers(1, 3))
    hi = draw(st.integers(max(lo, 1), 12))
    stz = None
    if use_zero:
        acts = tuple(
            Activation(m.name, draw(st.sampled_from((0.0, 0.5, 2.0))))
            for m in metrics[: draw(st.integers(1, count))]
        )
        stz = ScaleToZero(after=draw(st.sampled_from((15.0, 60.0, 300.0))), activation=acts)
    fallback = draw(st.sampled_from((None, 2, 5)))
    panic = draw(st.sampled_from((None, Panic(2.0, 60.0), Panic(1.5, 30.0))))
    replica_usd = draw(st.sampled_from((None, 2.5)))
    cap = Cost()
    if replica_usd is not None:
        cap = Cost(replica_usd, draw(st.sampled_from((2.5, 10.0, 20.0, 100.0))))
    tol = draw(st.sampled_from((0.0, 0.05, 0.1, 0.3)))
    return Policy(
        name="p",
        deployment=Deployment("sim", "d", CREATE),
        replicas=Replicas(lo, hi),
        metrics=metrics,
        behavior=Behavior(
            tolerance=Tolerance(tol, draw(st.sampled_from((tol, 0.2)))),
            scale_up=draw(scaling_rules(up=True)),
            scale_down=draw(scaling_rules(up=False)),
            panic=panic,
        ),
        scale_to_zero=stz,
        on_metric_failure=OnMetricFailure(
            after=draw(st.integers(1, 4)),
            action="hold" if fallback is None else "replicas",
            replicas=fallback,
        ),
        on_deployment_failure=OnDeploymentFailure(
            action=draw(st.sampled_from(("report", "recreate"))), backoff=30.0, max_backoff=240.0
        ),
        schedules=tuple(draw(st.sets(st.sampled_from(SCHEDULES), max_size=2))) if schedules else (),
        cost=cap,
    )


metric_values = st.one_of(
    st.none(),
    st.sampled_from((0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 20.0, 100.0)),
    st.floats(0.0, 500.0, allow_nan=False),
)


def metric_readings(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, float | None]]:
    return st.fixed_dictionaries({n: metric_values for n in names})


def healthy_readings(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, float | None]]:
    return st.fixed_dictionaries({n: st.floats(0.0, 500.0, allow_nan=False) for n in names})


# --- stage inputs ----------------------------------------------------------------------------


def context(
    p: Policy,
    obs: Observation,
    state: CoreState | None = None,
    now: float = T0,
) -> Context:
    """The context a stage sees for `obs` (bounds as `decide` computes them for its status)."""
    present = obs.status != "absent"
    return Context(
        p,
        state or initial_state(),
        obs,
        now,
        obs.replicas if present else 0,
        bounds(p, now, floor_one=present),
    )


def proposal(replicas: int, desired: int | None = None, **fields: Any) -> Proposal:
    """A proposal of `replicas` whose recommendation (a plain scale_up one, unless given)
    asks for `desired`."""
    rec = fields.pop("recommendation", None)
    if rec is None and desired is not None:
        rec = Recommendation(desired, "scale_up", f"-> {desired}")
    p = Proposal(replicas, **fields)
    if rec is not None:
        p = p.recommended(rec)._replace(replicas=replicas)
    return p
