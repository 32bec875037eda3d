"""Built-in baselines: what engineers run today, expressed as policies for the same core.

Each baseline except `static-peak` is a `Policy` built from the model's dataclasses and run
through the real `decide()`, so a baseline differs from a user's policy only in its settings:

- `static-peak`: a fixed count, enough for the peak in flight when nothing queues
  (ceil(peak / max_concurrency)), for the whole run. No controller.
- `hpa`: Kubernetes HPA (autoscaling/v2) defaults scaling on in-flight requests per replica:
  average_value target 0.8 x max concurrency (a replica is "full" at its concurrency; 80 % is
  the usual utilisation target), 15 s sync period, tolerance 0.1, behavior defaults (up: +4 or
  +100 % per 15 s, no window; down: 300 s stabilization, -100 % per 15 s), min 1.
- `keda-vllm`: the vLLM production stack's KEDA ScaledObject: `vllm:num_requests_waiting`,
  threshold 5 per replica, pollingInterval 15 s, minReplicaCount 1, HPA default behavior
  underneath. Its cooldownPeriod (360 s) only governs 1 <-> 0 in KEDA, which minReplicaCount 1
  never reaches, so it has no effect here (a min-0 variant would delete the deployment whenever
  nothing queued for 6 minutes, even while requests run).
- `kpa`: Knative KPA defaults: concurrency target 0.7 x max concurrency per replica
  (containerConcurrency = max concurrency, target utilisation 70 %), 2 s tick, panic when the
  instant recommendation is >= 2 x ready replicas with a 60 s hold (the stable window),
  scale-down at most halving per tick (max-scale-down-rate 2), and scale to zero after a
  stable window with nothing in flight. Knative averages concurrency over its 60 s stable
  window; the core's equivalent is a 60 s down-stabilization window (the max of the window's
  recommendations), slightly more conservative.
"""

from __future__ import annotations

from collections.abc import Sequence

from autoscaler.policy.model import (
    Activation,
    Behavior,
    Deployment,
    Metric,
    Panic,
    Policy,
    PrometheusSource,
    RatePolicy,
    Replicas,
    ScaleToZero,
    ScalingRules,
    Target,
    Tolerance,
)
from autoscaler.simulate.controllers import FixedController, PolicyController
from autoscaler.simulate.signals import Binding

BASELINES: tuple[str, ...] = ("static-peak", "hpa", "keda-vllm", "kpa")


class UnknownBaseline(ValueError):
    pass


def _metric(name: str, target: Target) -> Metric:
    source = PrometheusSource(urls=("http://simulated.invalid/metrics",), metric=f"sim:{name}")
    return Metric(name=name, source=source, target=target)


def _deployment(name: str) -> Deployment:
    return Deployment(provider="simulated", name=name, create={"simulated": True})


def baseline_policy(name: str, max_concurrency: int, max_replicas: int) -> Policy:
    """The `Policy` a named baseline runs (every baseline but static-peak)."""
    if name == "hpa":
        return Policy(
            name="hpa",
            deployment=_deployment("hpa"),
            replicas=Replicas(min=1, max=max_replicas),
            metrics=(_metric("in_flight", Target("average_value", 0.8 * max_concurrency)),),
            interval=15.0,
            behavior=Behavior(),
        )
    if name == "keda-vllm":
        return Policy(
            name="keda-vllm",
            deployment=_deployment("keda-vllm"),
            replicas=Replicas(min=1, max=max_replicas),
            metrics=(_metric("waiting", Target("average_value", 5.0)),),
            interval=15.0,
            behavior=Behavior(),
        )
    if name == "kpa":
        return Policy(
            name="kpa",
            deployment=_deployment("kpa"),
            replicas=Replicas(min=0, max=max_replicas),
            metrics=(_metric("in_flight", Target("average_value", 0.7 * max_concurrency)),),
            interval=2.0,
            behavior=Behavior(
                tolerance=Tolerance(0.0, 0.0),  # KPA has no tolerance band
                scale_up=ScalingRules(
                    stabilization_window=0.0,
                    policies=(RatePolicy("percent", 100_000, 2.0),),  # max-scale-up-rate 1000
                ),
                scale_down=ScalingRules(
                    stabilization_window=60.0,
                    policies=(RatePolicy("percent", 50, 2.0),),  # max-scale-down-rate 2
                ),
                panic=Panic(threshold=2.0, hold=60.0),
            ),
            scale_to_zero=ScaleToZero(after=60.0, activation=(Activation("in_flight", 0.0),)),
        )
    raise UnknownBaseline(name)


def baseline_controller(
    name: str,
    *,
    max_concurrency: int,
    max_replicas: int,
    peak_replicas: int,
    replica_hourly_usd: float | None,
) -> PolicyController | FixedController:
    if name == "static-peak":
        return FixedController(
            name="static-peak",
            replicas=max(peak_replicas, 1),
            replica_hourly_usd=replica_hourly_usd,
        )
    if name not in BASELINES:
        raise UnknownBaseline(name)
    policy = baseline_policy(name, max_concurrency, max_replicas)
    bindings: Sequence[Binding] = tuple(
        Binding(m.name, m.name, "total", "baseline") for m in policy.metrics
    )
    return PolicyController(policy=policy, bindings=bindings, replica_hourly_usd=replica_hourly_usd)
