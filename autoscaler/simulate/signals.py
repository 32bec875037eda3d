"""Simulated signals and how a policy's metrics bind to them.

The simulator produces five signals, all deployment-wide: `waiting` (queued requests),
`running` (requests being served), `in_flight` (both), `arrival_rate` (requests per second over
the last controller interval) and `utilization` (running / (ready replicas x max concurrency),
at most 1). A policy metric is bound to one of them automatically when its source names a known
metric (vLLM gauges; any queue source means `waiting`) or explicitly with `--signal
METRIC=SIGNAL`; anything else is an error, never a silent zero. A PromQL query naming both
the running and the waiting gauge reads as `in_flight`; queue sources that count delivered but
unacknowledged work (Redis `pending`, RabbitMQ unacked, NATS ack-pending) read as running or
in flight.

Only the binding and the value mapping live here; the engine computes the signals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from autoscaler.policy.model import (
    NatsSource,
    Policy,
    PrometheusSource,
    PromQLSource,
    RabbitMQSource,
    RedisSource,
)

SIGNALS: tuple[str, ...] = ("waiting", "running", "in_flight", "arrival_rate", "utilization")

# metric family named by a source -> simulated signal
KNOWN_METRICS: Mapping[str, str] = {
    "vllm:num_requests_waiting": "waiting",
    "vllm:num_requests_running": "running",
    "vllm:kv_cache_usage_perc": "utilization",
    "vllm:gpu_cache_usage_perc": "utilization",  # the name before vLLM 0.7
}

# How a per-replica gauge aggregates: deployment totals divided across replicas for `avg`.
Scaling = Literal["total", "per_replica", "sum_of_ratios"]


class BindingError(Exception):
    """A policy metric the simulator cannot feed, or a malformed --signal option."""


@dataclass(frozen=True, slots=True)
class Binding:
    metric: str
    signal: str
    scaling: Scaling = "total"
    how: str = ""  # why this binding was chosen, for the summary


@dataclass(frozen=True, slots=True)
class Signals:
    waiting: float
    running: float
    arrival_rate: float
    utilization: float
    reporting: int  # replicas that would export per-replica gauges (ready + draining)

    @property
    def in_flight(self) -> float:
        return self.waiting + self.running

    def value(self, signal: str) -> float:
        if signal == "in_flight":
            return self.in_flight
        return float(getattr(self, signal))


def parse_signal_options(items: Sequence[str]) -> dict[str, str]:
    """`--signal METRIC=SIGNAL` options as a mapping; errors name the bad option."""
    out: dict[str, str] = {}
    for item in items:
        metric, sep, signal = item.partition("=")
        metric, signal = metric.strip(), signal.strip()
        if not sep or not metric or not signal:
            raise BindingError(f"--signal {item!r}: expected METRIC=SIGNAL")
        if signal not in SIGNALS:
            raise BindingError(
                f"--signal {item!r}: unknown signal {signal!r}; one of {', '.join(SIGNALS)}"
            )
        out[metric] = signal
    return out


def bind_metrics(policy: Policy, overrides: Mapping[str, str]) -> tuple[Binding, ...]:
    """Bind every metric of `policy` to a signal, or raise naming each one that is unbound."""
    bindings: list[Binding] = []
    unbound: list[str] = []
    for metric in policy.metrics:
        source = metric.source
        aggregate = source.aggregate if isinstance(source, PrometheusSource) else "sum"
        if metric.name in overrides:
            signal, how = overrides[metric.name], "--signal"
        else:
            found = _signal_for_source(source)
            if found is None:
                unbound.append(f"{metric.name} ({_describe(source)})")
                continue
            signal, how = found
        scaling: Scaling = "total"
        if aggregate != "sum" and signal in ("waiting", "running", "in_flight"):
            scaling = "per_replica"
        elif aggregate == "sum" and signal == "utilization" and how != "--signal":
            scaling = "sum_of_ratios"
        bindings.append(Binding(metric.name, signal, scaling, how))
    if unbound:
        where = f" in {policy.source_file}" if policy.source_file else ""
        raise BindingError(
            f"policy {policy.name!r}{where}: cannot simulate metric(s) {'; '.join(unbound)}: "
            f"bind each with --signal METRIC=SIGNAL (signals: {', '.join(SIGNALS)})"
        )
    return tuple(bindings)


def _signal_for_source(source: object) -> tuple[str, str] | None:
    if isinstance(source, PrometheusSource):
        signal = KNOWN_METRICS.get(source.metric)
        return (signal, f"metric {source.metric}") if signal else None
    if isinstance(source, PromQLSource):
        named = [name for name in KNOWN_METRICS if name in source.query]
        signals = {KNOWN_METRICS[name] for name in named}
        if signals == {"waiting", "running"}:  # e.g. sum(running) + sum(waiting)
            return "in_flight", f"query names {' and '.join(named)}"
        if len(signals) == 1:
            return signals.pop(), f"query names {named[0]}"
        return None
    if isinstance(source, RedisSource):
        if source.mode == "pending":  # delivered to a worker, not yet acknowledged
            return "running", "redis pending entries"
        return "waiting", f"redis {source.mode} depth"
    if isinstance(source, RabbitMQSource):
        if source.include_unacked:
            return "in_flight", "rabbitmq ready + unacknowledged"
        return "waiting", "rabbitmq ready messages"
    if isinstance(source, NatsSource):
        if source.include_ack_pending:
            return "in_flight", "nats pending + ack pending"
        return "waiting", "nats pending messages"
    return None


def _describe(source: object) -> str:
    if isinstance(source, PrometheusSource):
        return f"prometheus metric {source.metric}"
    if isinstance(source, PromQLSource):
        return f"promql {source.query!r}"
    return f"{getattr(source, 'type', 'unknown')} source"


def metric_values(bindings: Sequence[Binding], signals: Signals) -> dict[str, float | None]:
    """The observation's metrics: each bound metric's value as its source would report it."""
    out: dict[str, float | None] = {}
    reporting = max(signals.reporting, 1)
    for binding in bindings:
        value = signals.value(binding.signal)
        if binding.scaling == "per_replica":
            value /= reporting
        elif binding.scaling == "sum_of_ratios":
            value *= signals.reporting
        out[binding.metric] = float(value)
    return out
