"""Simulated signals and how a policy's metrics bind to them.

The simulator produces these signals, all deployment-wide:
- gauges, at the instant of the evaluation: `waiting` (queued requests), `running` (requests
  being served), `in_flight` (both), `utilization` (running / (ready replicas x max
  concurrency), at most 1);
- over the trailing signal window (`SIGNAL_WINDOW_S`, 60 s, as a PromQL `rate(...[1m])`, or
  the controller interval when longer): `arrival_rate`, `start_rate` and `completion_rate`
  (requests per second arriving, getting a slot, finishing), `service_time` and
  `service_time_cv` (mean and coefficient of variation of the time requests that finished held
  their slot; before any finished, the trace's own, as a daemon that has been running knows
  them), `observed_wait` (the wait of
  the requests that started, at the quantile the policy's objective names; when none started
  but some wait, the oldest one's wait so far).
The deployment's start-up time as the daemon measures it (the last scale or create call to
a new replica ready) is passed in the observation, not as a metric.

A policy metric is bound to a signal automatically when its source names a known metric
(vLLM gauges, counters and histograms; any queue source means `waiting`) or explicitly with
`--signal METRIC=SIGNAL`; anything else is an error, never a silent zero. A PromQL query
naming both the running and the waiting gauge reads as `in_flight`; queue sources that count
delivered but unacknowledged work (Redis `pending`, RabbitMQ unacked, NATS ack-pending) read as
running or in flight.

The binding, the value mapping and the window's arithmetic live here; the engines feed the
window and read the gauges.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from autoscaler.policy.model import (
    NatsSource,
    Policy,
    PrometheusSource,
    PromQLSource,
    RabbitMQSource,
    RedisSource,
)

SIGNALS: tuple[str, ...] = (
    "waiting",
    "running",
    "in_flight",
    "arrival_rate",
    "utilization",
    "completion_rate",
    "start_rate",
    "service_time",
    "service_time_cv",
    "observed_wait",
)

# metric family named by a source -> simulated signal
KNOWN_METRICS: Mapping[str, str] = {
    "vllm:num_requests_waiting": "waiting",
    "vllm:num_requests_running": "running",
    "vllm:kv_cache_usage_perc": "utilization",
    "vllm:gpu_cache_usage_perc": "utilization",  # the name before vLLM 0.7
    # counters and histograms, read through PromQL (rate, histogram_quantile)
    "vllm:request_success_total": "completion_rate",  # finished requests
    # observed at each request's first token: requests getting a slot (prefill is short)
    "vllm:time_to_first_token_seconds": "start_rate",
    "vllm:request_inference_time_seconds": "service_time",  # time in the RUNNING phase
    "vllm:request_queue_time_seconds": "observed_wait",  # time in the WAITING phase
}

# The trailing window of the rate-like signals: a Prometheus rate(...[1m]).
SIGNAL_WINDOW_S = 60.0

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
    quantile: float = 0.99  # for `observed_wait`: the policy objective's quantile


@dataclass(frozen=True, slots=True)
class Signals:
    waiting: float
    running: float
    arrival_rate: float
    utilization: float
    reporting: int  # replicas that would export per-replica gauges (ready + draining)
    completion_rate: float = 0.0
    start_rate: float = 0.0
    service_time: float = 0.0
    service_time_cv: float = 0.0
    # waits of the requests that started over the window (weights: amounts, aggregated mode)
    wait_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wait_weights: np.ndarray | None = None
    oldest_wait: float = 0.0  # how long the head of the queue has waited
    startup_s: float | None = None  # the last start-up the daemon would have measured

    @property
    def in_flight(self) -> float:
        return self.waiting + self.running

    def observed_wait(self, quantile: float) -> float:
        if self.wait_values.size == 0:
            return self.oldest_wait
        return max(weighted_quantile(self.wait_values, self.wait_weights, quantile), 0.0)

    def value(self, signal: str, quantile: float = 0.99) -> float:
        if signal == "in_flight":
            return self.in_flight
        if signal == "observed_wait":
            return self.observed_wait(quantile)
        return float(getattr(self, signal))


def weighted_quantile(values: np.ndarray, weights: np.ndarray | None, q: float) -> float:
    if values.size == 0:
        return math.nan
    if weights is None:
        return float(np.quantile(values, q))
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    if cum[-1] <= 0:
        return math.nan
    idx = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(v[min(idx, v.size - 1)])


@dataclass(frozen=True, slots=True)
class WindowStats:
    arrival_rate: float
    completion_rate: float
    start_rate: float
    service_time: float
    service_time_cv: float
    wait_values: np.ndarray
    wait_weights: np.ndarray | None


@dataclass
class _Bucket:
    start: float
    arrived: float = 0.0
    completed: float = 0.0
    s_n: float = 0.0
    s_sum: float = 0.0
    s_sq: float = 0.0
    waits: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


class SignalWindow:
    """What a Prometheus range of `window_s` would show at each evaluation: the engines report
    arrivals, completions (with the service time when known) and starts (with their wait);
    `close(now)` ends the current bucket and returns the window's figures."""

    def __init__(
        self, window_s: float, service_mean: float, service_cv: float, weighted: bool
    ) -> None:
        self.window_s = window_s
        self.weighted = weighted  # aggregated mode: amounts, not single requests
        self._service = (service_mean, service_cv)  # until requests finish: the trace's own
        self._buckets: deque[_Bucket] = deque()
        self._now = _Bucket(0.0)

    def arrived(self, amount: float = 1.0) -> None:
        self._now.arrived += amount

    def completed(self, amount: float = 1.0, service_s: float | None = None) -> None:
        b = self._now
        b.completed += amount
        if service_s is not None:
            b.s_n += amount
            b.s_sum += amount * service_s
            b.s_sq += amount * service_s * service_s

    def started(self, wait_s: float, amount: float = 1.0) -> None:
        self._now.waits.append(wait_s)
        if self.weighted:
            self._now.weights.append(amount)

    def close(self, now: float, interval: float) -> WindowStats:
        self._buckets.append(self._now)
        self._now = _Bucket(now)
        span = max(self.window_s, interval)
        while len(self._buckets) > 1 and self._buckets[1].start <= now - span:
            self._buckets.popleft()
        first = self._buckets[0].start
        elapsed = now - first if now > first else interval
        arrived = completed = s_n = s_sum = s_sq = 0.0
        waits: list[float] = []
        weights: list[float] = []
        for b in self._buckets:
            arrived += b.arrived
            completed += b.completed
            s_n += b.s_n
            s_sum += b.s_sum
            s_sq += b.s_sq
            waits += b.waits
            weights += b.weights
        if s_n > 0:
            mean = s_sum / s_n
            var = max(s_sq / s_n - mean * mean, 0.0)
            self._service = (mean, math.sqrt(var) / mean if mean > 0 else 0.0)
        started = float(sum(weights)) if self.weighted else float(len(waits))
        return WindowStats(
            arrived / elapsed,
            completed / elapsed,
            started / elapsed,
            self._service[0],
            self._service[1],
            np.asarray(waits, dtype=np.float64),
            np.asarray(weights, dtype=np.float64) if self.weighted else None,
        )


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
        quantile = policy.objective.quantile if policy.objective is not None else 0.99
        bindings.append(Binding(metric.name, signal, scaling, how, quantile))
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
        value = signals.value(binding.signal, binding.quantile)
        if binding.scaling == "per_replica":
            value /= reporting
        elif binding.scaling == "sum_of_ratios":
            value *= signals.reporting
        out[binding.metric] = float(value)
    return out
