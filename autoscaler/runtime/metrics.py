"""Prometheus metrics of the daemon: the `Recorder` implementation over prometheus-client.

Every series has a fixed label set (policy, provider, operation, status code, source metric and
type, action, reason) so the cardinality is bounded by the configuration, never by data.
The names below are a contract: `deploy/grafana-dashboard.json` queries them and a test checks
that it references nothing else. Serving the exposition lives in `http.py`, not here.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.metrics import MetricWrapperBase

PREFIX = "autoscaler_"

# Evaluations are short (reads + one provider call); lag should stay well under a second.
EVALUATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)
# Scale from zero includes model provisioning: seconds to tens of minutes.
FROM_ZERO_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Recorder for the reconcile loop; `.registry` is what `/metrics` exposes.

    A registry made here also carries the standard `process_*` (CPU seconds, resident
    memory, open fds) and `python_info` series, so the daemon's own cost is on the dashboard;
    a registry passed in is left as it is (the global one already has them)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
        self.registry = registry
        r = self.registry
        # --- per policy
        self.desired_replicas = Gauge(
            PREFIX + "desired_replicas",
            "Replicas the last decision asked for.",
            ["policy"],
            registry=r,
        )
        self.current_replicas = Gauge(
            PREFIX + "current_replicas",
            "Replicas the provider reported at the last evaluation.",
            ["policy"],
            registry=r,
        )
        self.decisions = Counter(
            PREFIX + "decisions",
            "Decisions by action and reason (one increment per reason of a decision).",
            ["policy", "action", "reason"],
            registry=r,
        )
        self.evaluation_seconds = Histogram(
            PREFIX + "evaluation_duration_seconds",
            "Wall time of one evaluation (read, decide, act, record).",
            ["policy"],
            buckets=EVALUATION_BUCKETS,
            registry=r,
        )
        self.evaluation_lag = Histogram(
            PREFIX + "evaluation_lag_seconds",
            "How late an evaluation started after it was due.",
            ["policy"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.last_lag = Gauge(
            PREFIX + "evaluation_last_lag_seconds",
            "Lag of the most recent evaluation.",
            ["policy"],
            registry=r,
        )
        self.scale_from_zero_seconds = Histogram(
            PREFIX + "scale_from_zero_seconds",
            "From the first activation at zero to the recreated deployment being ready.",
            ["policy"],
            buckets=FROM_ZERO_BUCKETS,
            registry=r,
        )
        self.dry_run_gauge = Gauge(
            PREFIX + "dry_run",
            "1 when the policy decides without calling the provider's write API.",
            ["policy"],
            registry=r,
        )
        # --- per provider
        self.provider_requests = Counter(
            PREFIX + "provider_requests",
            "Provider API requests by operation and HTTP status ('error': no response).",
            ["provider", "operation", "status"],
            registry=r,
        )
        self.provider_request_seconds = Histogram(
            PREFIX + "provider_request_duration_seconds",
            "Provider API request duration.",
            ["provider", "operation"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        # --- per source
        self.source_read_seconds = Histogram(
            PREFIX + "source_read_duration_seconds",
            "Metric source read duration.",
            ["policy", "metric", "type"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.source_errors = Counter(
            PREFIX + "source_errors",
            "Failed metric source reads.",
            ["policy", "metric", "type"],
            registry=r,
        )
        # --- leadership
        self.is_leader = Gauge(
            PREFIX + "is_leader", "1 while this daemon holds the leader lease.", registry=r
        )
        self.epoch = Gauge(
            PREFIX + "leader_epoch", "Fencing epoch of the lease last held.", registry=r
        )
        # Label values seen per policy, so policy_removed() can drop exactly those series.
        self._policy_series: dict[str, set[tuple[MetricWrapperBase, tuple[str, ...]]]] = {}

    def _track(self, policy: str, metric: MetricWrapperBase, labels: tuple[str, ...]) -> None:
        self._policy_series.setdefault(policy, set()).add((metric, labels))

    # --- Recorder -------------------------------------------------------------------------

    def decision(self, policy: str, action: str, reasons: tuple[str, ...]) -> None:
        for reason in reasons or ("none",):
            labels = (policy, action, reason)
            self.decisions.labels(*labels).inc()
            self._track(policy, self.decisions, labels)

    def replicas(self, policy: str, desired: int, current: int) -> None:
        self.desired_replicas.labels(policy).set(desired)
        self.current_replicas.labels(policy).set(current)
        self._track(policy, self.desired_replicas, (policy,))
        self._track(policy, self.current_replicas, (policy,))

    def evaluation(self, policy: str, seconds: float, lag: float) -> None:
        lag = max(0.0, lag)
        self.evaluation_seconds.labels(policy).observe(seconds)
        self.evaluation_lag.labels(policy).observe(lag)
        self.last_lag.labels(policy).set(lag)
        for metric in (self.evaluation_seconds, self.evaluation_lag, self.last_lag):
            self._track(policy, metric, (policy,))

    def scale_from_zero(self, policy: str, seconds: float) -> None:
        self.scale_from_zero_seconds.labels(policy).observe(seconds)
        self._track(policy, self.scale_from_zero_seconds, (policy,))

    def dry_run(self, policy: str, enabled: bool) -> None:
        self.dry_run_gauge.labels(policy).set(1 if enabled else 0)
        self._track(policy, self.dry_run_gauge, (policy,))

    def provider_request(
        self, provider: str, operation: str, status: int | None, seconds: float
    ) -> None:
        code = "error" if status is None else str(status)
        self.provider_requests.labels(provider, operation, code).inc()
        self.provider_request_seconds.labels(provider, operation).observe(seconds)

    def source_read(
        self, policy: str, metric: str, source_type: str, seconds: float, ok: bool
    ) -> None:
        labels = (policy, metric, source_type)
        self.source_read_seconds.labels(*labels).observe(seconds)
        self._track(policy, self.source_read_seconds, labels)
        # Touch the error counter on success too, so the series exists at 0 and rate() works.
        errors = self.source_errors.labels(*labels)
        self._track(policy, self.source_errors, labels)
        if not ok:
            errors.inc()

    def leadership(self, is_leader: bool, epoch: int) -> None:
        self.is_leader.set(1 if is_leader else 0)
        self.epoch.set(epoch)

    def policy_removed(self, policy: str) -> None:
        for metric, labels in self._policy_series.pop(policy, set()):
            try:
                metric.remove(*labels)
            except KeyError:
                pass  # already gone; removal is idempotent


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
    )
)
"""Exposed family names (counters with their `_total` suffix); histograms also expose
`_bucket`, `_sum` and `_count` series."""
