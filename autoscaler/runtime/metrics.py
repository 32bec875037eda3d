"""Prometheus metrics of the daemon: the `Recorder` implementation.

Every series has a fixed label set (policy, provider, operation, status code, source metric and
type, action, reason) so the cardinality is bounded by the configuration, never by data.
The names below are a contract: `deploy/grafana-dashboard.json` queries them and a test checks
that it references nothing else.

Why not prometheus-client's metric objects: at 10,000 policies they held ~250 MB and one
scrape took ~10 s of CPU (a lock and a value object per bucket, a generic sample path). Here a
series is a plain list of floats and `MetricsRegistry.render_text()` writes the text
exposition directly (~10x faster); the registry still serves every prometheus-client reader
(`generate_latest`, OpenMetrics, `get_sample_value`) through a collector. All updates and
renders happen on the daemon's event loop thread, so no locks are taken.
Serving lives in `http.py`, not here.

Long because every metric family is declared here once, with its help text and labels: the
list is the contract the dashboard reads.
"""

from __future__ import annotations

import math
import platform
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from autoscaler.core.status import STATUSES

PREFIX = "autoscaler_"

# Evaluations are short (reads + one provider call); lag should stay well under a second.
EVALUATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)
# Scale from zero includes model provisioning: seconds to tens of minutes.
FROM_ZERO_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Kind = Literal["gauge", "counter", "histogram"]
Labels = tuple[str, ...]
SeriesSnapshot = tuple[list[Labels], list[list[float]]]
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The deployment statuses `autoscaler_deployment_status` has a series for (the core's).
# What became of a decision (`autoscaler_decision_outcomes_total{outcome}`).
OUTCOMES = ("executed", "no_action", "failed", "dry_run", "paused", "standby")


def _build_labels() -> Labels:
    from autoscaler import __version__
    from autoscaler.core import COMPILED

    return (__version__, platform.python_version(), "compiled" if COMPILED else "interpreted")


def _float(value: float) -> str:
    """Go-style float text, as Prometheus writes it."""
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Family:
    """One metric family: its series are `labels -> [value]` (gauge, counter) or
    `labels -> [bucket counts (not cumulative, +Inf last)..., sum, count]` (histogram)."""

    __slots__ = ("buckets", "help", "kind", "label_names", "name", "series")

    def __init__(
        self,
        name: str,
        help_text: str,
        kind: Kind,
        label_names: Sequence[str] = (),
        buckets: Sequence[float] = (),
    ) -> None:
        self.name = name  # counters: without `_total`
        self.help = help_text
        self.kind = kind
        self.label_names = tuple(label_names)
        self.buckets = tuple(buckets)
        self.series: dict[Labels, list[float]] = {}
        if not self.label_names and kind != "histogram":
            self.series[()] = [0.0]  # an unlabelled gauge or counter exists from the start

    def _get(self, labels: Labels) -> list[float]:
        values = self.series.get(labels)
        if values is None:
            size = len(self.buckets) + 3 if self.kind == "histogram" else 1
            values = self.series[labels] = [0.0] * size
        return values

    def set(self, labels: Labels, value: float) -> None:
        self._get(labels)[0] = value

    def inc(self, labels: Labels, amount: float = 1.0) -> None:
        self._get(labels)[0] += amount

    def touch(self, labels: Labels) -> None:
        self._get(labels)

    def observe(self, labels: Labels, value: float) -> None:
        values = self._get(labels)
        values[bisect_left(self.buckets, value)] += 1  # index len(buckets) is +Inf
        values[-2] += value
        values[-1] += 1

    def remove(self, labels: Labels) -> None:
        self.series.pop(labels, None)

    # --- output ---------------------------------------------------------------------------

    @property
    def sample_name(self) -> str:
        return self.name + "_total" if self.kind == "counter" else self.name

    def snapshot(self) -> SeriesSnapshot:
        """The series as of now (a new series or a removal cannot disturb a render in
        another thread). The value lists are shared: a render may see an observation made
        meanwhile in one bucket and not yet in the count, as prometheus-client may too."""
        # Two flat lists, not a tuple per series: no allocation storm, no GC pass.
        return list(self.series), list(self.series.values())

    def render(self, out: list[str], items: SeriesSnapshot | None = None) -> None:
        name = self.sample_name
        keys, values_list = self.snapshot() if items is None else items
        series = zip(keys, values_list, strict=True)  # lazy: no tuple per series kept
        out.append(f"# HELP {name} {self.help}\n# TYPE {name} {self.kind}\n")
        names = self.label_names
        if self.kind != "histogram":
            for labels, values in series:
                if labels:
                    inner = ",".join(
                        f'{n}="{_escape(v)}"' for n, v in zip(names, labels, strict=True)
                    )
                    out.append(f"{name}{{{inner}}} {_float(values[0])}\n")
                else:
                    out.append(f"{name} {_float(values[0])}\n")
            return
        les = [_float(b) for b in self.buckets] + ["+Inf"]
        for labels, values in series:
            inner = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, labels, strict=True))
            prefix = f"{name}_bucket{{{inner}," if inner else f"{name}_bucket{{"
            cumulative = 0.0
            for le, count in zip(les, values, strict=False):
                cumulative += count
                out.append(f'{prefix}le="{le}"}} {_float(cumulative)}\n')
            suffix = f"{{{inner}}}" if inner else ""
            out.append(f"{name}_count{suffix} {_float(values[-1])}\n")
            out.append(f"{name}_sum{suffix} {_float(values[-2])}\n")

    def to_metric(self) -> Metric:
        names = list(self.label_names)
        family: Metric
        if self.kind == "gauge":
            family = GaugeMetricFamily(self.name, self.help, labels=names)
            for labels, values in self.series.items():
                family.add_metric(list(labels), values[0])
        elif self.kind == "counter":
            family = CounterMetricFamily(self.name, self.help, labels=names)
            for labels, values in self.series.items():
                family.add_metric(list(labels), values[0])
        else:
            family = HistogramMetricFamily(self.name, self.help, labels=names)
            les = [_float(b) for b in self.buckets] + ["+Inf"]
            for labels, values in self.series.items():
                cumulative, points = 0.0, []
                for le, count in zip(les, values, strict=False):
                    cumulative += count
                    points.append((le, cumulative))
                family.add_metric(list(labels), points, sum_value=values[-2])
        return family


Snapshot = list[tuple[Family, SeriesSnapshot]]


class _FamiliesCollector:
    def __init__(self, families: Sequence[Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.to_metric()


class _RegistryCollector:
    """Another registry's metrics, as one collector of this one."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class MetricsRegistry(CollectorRegistry):
    """The daemon's registry: its own families plus the standard `process_*` and
    `python_info` series. `render_text()` is the fast path for the classic text format."""

    def __init__(self, families: Sequence[Family]) -> None:
        super().__init__(auto_describe=False)
        self.families = families
        self.standard = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.standard)
        PlatformCollector(registry=self.standard)
        self.register(_FamiliesCollector(families))
        self.register(_RegistryCollector(self.standard))

    def render_text(self) -> bytes:
        """Prometheus text format 0.0.4 of everything in this registry."""
        return self.render_snapshot(self.snapshot())

    def snapshot(self) -> Snapshot:
        """Take on the event loop thread; `render_snapshot` may then run in a worker thread,
        so a big scrape does not stall evaluations."""
        return [(family, family.snapshot()) for family in self.families]

    def render_snapshot(self, snapshot: Snapshot) -> bytes:
        out: list[str] = []
        for family, items in snapshot:
            family.render(out, items)
        return "".join(out).encode() + generate_latest(self.standard)


class Metrics:
    """Recorder for the reconcile loop; `.registry` is what `/metrics` exposes.

    Without a registry, a `MetricsRegistry` is made (with the process metrics and the fast
    text path); a registry passed in gets the daemon's families as one more collector."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Long because every metric family is declared here once, with its help text and
        labels: the list is the contract the dashboard reads."""
        p = PREFIX
        # --- per policy
        self.desired_replicas = Family(
            p + "desired_replicas", "Replicas the last decision asked for.", "gauge", ["policy"]
        )
        self.current_replicas = Family(
            p + "current_replicas",
            "Replicas the provider reported at the last evaluation.",
            "gauge",
            ["policy"],
        )
        self.decisions = Family(
            p + "decisions",
            "Decisions by action and reason (one increment per reason of a decision).",
            "counter",
            ["policy", "action", "reason"],
        )
        self.evaluation_seconds = Family(
            p + "evaluation_duration_seconds",
            "Wall time of one evaluation (read, decide, act, record).",
            "histogram",
            ["policy"],
            EVALUATION_BUCKETS,
        )
        self.evaluation_lag = Family(
            p + "evaluation_lag_seconds",
            "How late an evaluation started after it was due.",
            "histogram",
            ["policy"],
            LAG_BUCKETS,
        )
        self.last_lag = Family(
            p + "evaluation_last_lag_seconds",
            "Lag of the most recent evaluation.",
            "gauge",
            ["policy"],
        )
        self.scale_from_zero_seconds = Family(
            p + "scale_from_zero_seconds",
            "From the first activation at zero to the recreated deployment being ready.",
            "histogram",
            ["policy"],
            FROM_ZERO_BUCKETS,
        )
        self.dry_run_gauge = Family(
            p + "dry_run",
            "1 when the policy decides without calling the provider's write API.",
            "gauge",
            ["policy"],
        )
        # --- per provider
        self.provider_requests = Family(
            p + "provider_requests",
            "Provider API requests by operation and HTTP status ('error': no response).",
            "counter",
            ["provider", "operation", "status"],
        )
        self.provider_request_seconds = Family(
            p + "provider_request_duration_seconds",
            "Provider API request duration.",
            "histogram",
            ["provider", "operation"],
            REQUEST_BUCKETS,
        )
        # --- per source
        self.source_read_seconds = Family(
            p + "source_read_duration_seconds",
            "Metric source read duration.",
            "histogram",
            ["policy", "metric", "type"],
            REQUEST_BUCKETS,
        )
        self.source_errors = Family(
            p + "source_errors",
            "Failed metric source reads.",
            "counter",
            ["policy", "metric", "type"],
        )
        self.decision_outcomes = Family(
            p + "decision_outcomes",
            "Decisions by what became of them: executed (the provider action was carried "
            "out), no_action, failed, dry_run, paused, standby (decided by a daemon that "
            'does not lead; count a fleet\'s decisions with outcome!="standby").',
            "counter",
            ["policy", "action", "outcome"],
        )
        self.ready_replicas = Family(
            p + "ready_replicas",
            "Replicas serving at the last evaluation.",
            "gauge",
            ["policy"],
        )
        self.deployment_status = Family(
            p + "deployment_status",
            "1 for the deployment's status at the last evaluation, 0 for the others.",
            "gauge",
            ["policy", "status"],
        )
        self.hourly_cost = Family(
            p + "hourly_cost_usd",
            "Current replicas x cost.replica_hourly_usd (policies with a replica price).",
            "gauge",
            ["policy"],
        )
        self.metric_value = Family(
            p + "metric_value",
            "The value a policy metric read at the last evaluation (NaN: the read failed).",
            "gauge",
            ["policy", "metric"],
        )
        self.metric_target = Family(
            p + "metric_target",
            "The policy metric's target (per replica for average_value).",
            "gauge",
            ["policy", "metric"],
        )
        self.build_info = Family(
            p + "build_info",
            "1, labelled with the autoscaler and Python versions and the decision core's build.",
            "gauge",
            ["version", "python", "core"],
        )
        # --- leadership
        self.is_leader = Family(
            p + "is_leader", "1 while this daemon holds the leader lease.", "gauge"
        )
        self.epoch = Family(p + "leader_epoch", "Fencing epoch of the lease last held.", "gauge")

        self.families: tuple[Family, ...] = (
            self.desired_replicas,
            self.current_replicas,
            self.decisions,
            self.evaluation_seconds,
            self.evaluation_lag,
            self.last_lag,
            self.scale_from_zero_seconds,
            self.dry_run_gauge,
            self.provider_requests,
            self.provider_request_seconds,
            self.source_read_seconds,
            self.source_errors,
            self.is_leader,
            self.epoch,
            self.decision_outcomes,
            self.ready_replicas,
            self.deployment_status,
            self.hourly_cost,
            self.metric_value,
            self.metric_target,
            self.build_info,
        )
        self.build_info.set(_build_labels(), 1)
        self._by_policy_only = tuple(f for f in self.families if f.label_names == ("policy",))
        # Series with more labels than the policy, per policy: removal without a full scan.
        self._policy_series: dict[str, set[tuple[Family, Labels]]] = {}
        if registry is None:
            self.registry: CollectorRegistry = MetricsRegistry(self.families)
        else:
            registry.register(_FamiliesCollector(self.families))
            self.registry = registry

    # --- Recorder -------------------------------------------------------------------------

    def decision(self, policy: str, action: str, reasons: tuple[str, ...]) -> None:
        for reason in reasons or ("none",):
            labels = (policy, action, reason)
            self.decisions.inc(labels)
            self._track(policy, self.decisions, labels)

    def _track(self, policy: str, family: Family, labels: Labels) -> None:
        known = self._policy_series.get(policy)
        if known is None:
            known = self._policy_series[policy] = set()
        known.add((family, labels))

    def outcome(self, policy: str, action: str, outcome: str) -> None:
        labels = (policy, action, outcome)
        self.decision_outcomes.inc(labels)
        self._track(policy, self.decision_outcomes, labels)

    def observed(
        self,
        policy: str,
        status: str,
        ready: int,
        values: Mapping[str, float | None],
        targets: Mapping[str, float],
        hourly_cost: float | None,
    ) -> None:
        self.ready_replicas.set((policy,), ready)
        for known in STATUSES:  # removed by name in policy_removed: no tracking needed
            self.deployment_status.set((policy, known), 1 if known == status else 0)
        if hourly_cost is not None:
            self.hourly_cost.set((policy,), hourly_cost)
        for metric, target in targets.items():
            labels = (policy, metric)
            value = values.get(metric)
            self.metric_value.set(labels, math.nan if value is None else value)
            self.metric_target.set(labels, target)
            self._track(policy, self.metric_value, labels)
            self._track(policy, self.metric_target, labels)

    def replicas(self, policy: str, desired: int, current: int) -> None:
        self.desired_replicas.set((policy,), desired)
        self.current_replicas.set((policy,), current)

    def evaluation(self, policy: str, seconds: float, lag: float) -> None:
        lag = max(0.0, lag)
        key = (policy,)
        self.evaluation_seconds.observe(key, seconds)
        self.evaluation_lag.observe(key, lag)
        self.last_lag.set(key, lag)

    def scale_from_zero(self, policy: str, seconds: float) -> None:
        self.scale_from_zero_seconds.observe((policy,), seconds)

    def dry_run(self, policy: str, enabled: bool) -> None:
        self.dry_run_gauge.set((policy,), 1 if enabled else 0)

    def provider_request(
        self, provider: str, operation: str, status: int | None, seconds: float
    ) -> None:
        code = "error" if status is None else str(status)
        self.provider_requests.inc((provider, operation, code))
        self.provider_request_seconds.observe((provider, operation), seconds)

    def source_read(
        self, policy: str, metric: str, source_type: str, seconds: float, ok: bool
    ) -> None:
        labels = (policy, metric, source_type)
        self.source_read_seconds.observe(labels, seconds)
        self._track(policy, self.source_read_seconds, labels)
        self._track(policy, self.source_errors, labels)
        # The error counter exists at 0 after the first read, so rate() works from the start.
        if ok:
            self.source_errors.touch(labels)
        else:
            self.source_errors.inc(labels)

    def leadership(self, is_leader: bool, epoch: int) -> None:
        self.is_leader.set((), 1 if is_leader else 0)
        self.epoch.set((), epoch)

    def policy_removed(self, policy: str) -> None:
        for family in self._by_policy_only:
            family.remove((policy,))
        for status in STATUSES:
            self.deployment_status.remove((policy, status))
        for family, labels in self._policy_series.pop(policy, set()):
            family.remove(labels)


METRIC_NAMES: tuple[str, ...] = tuple(
    PREFIX + name
    for name in (
        "desired_replicas",
        "current_replicas",
        "decisions_total",
        "evaluation_duration_seconds",
        "evaluation_lag_seconds",
        "evaluation_last_lag_seconds",
        "scale_from_zero_seconds",
        "dry_run",
        "provider_requests_total",
        "provider_request_duration_seconds",
        "source_read_duration_seconds",
        "source_errors_total",
        "is_leader",
        "leader_epoch",
        "decision_outcomes_total",
        "ready_replicas",
        "deployment_status",
        "hourly_cost_usd",
        "metric_value",
        "metric_target",
        "build_info",
    )
)
"""Exposed family names (counters with their `_total` suffix); histograms also expose
`_bucket`, `_sum` and `_count` series."""
