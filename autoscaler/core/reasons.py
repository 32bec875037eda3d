"""Every reason code a decision can carry, with its one-line meaning.

Codes are a stable contract (logs, metrics labels, the README, replay output): add new ones,
never rename. Stages refer to them through the constants below so a typo is a NameError,
not a silently new code. Nothing but data lives here. The constants are `Final`, here and in
the other core modules: the compiled core (setup.py) inlines a `Final` constant, where it would
look any other module-level name up in a dict at each use.
"""

from __future__ import annotations

from typing import Final

SCALE_UP: Final = "scale_up"
SCALE_DOWN: Final = "scale_down"
NO_CHANGE: Final = "no_change"
WITHIN_TOLERANCE: Final = "within_tolerance"
STABILIZED_DOWN: Final = "stabilized_down"
STABILIZED_UP: Final = "stabilized_up"
RATE_LIMITED_UP: Final = "rate_limited_up"
RATE_LIMITED_DOWN: Final = "rate_limited_down"
SCALE_UP_DISABLED: Final = "scale_up_disabled"
SCALE_DOWN_DISABLED: Final = "scale_down_disabled"
COOLDOWN_UP: Final = "cooldown_up"
COOLDOWN_DOWN: Final = "cooldown_down"
PANIC: Final = "panic"
PANIC_HOLD: Final = "panic_hold"
MAX_REPLICAS: Final = "max_replicas"
MIN_REPLICAS: Final = "min_replicas"
SCHEDULE_MIN: Final = "schedule_min"
SCHEDULE_MAX: Final = "schedule_max"
COST_CAP: Final = "cost_cap"
METRICS_MISSING_NO_SCALE_DOWN: Final = "metrics_missing_no_scale_down"
METRIC_FAILURE_HOLD: Final = "metric_failure_hold"
FALLBACK: Final = "fallback"
IDLE_TO_ZERO: Final = "idle_to_zero"
IDLE_PENDING: Final = "idle_pending"
ACTIVATE_FROM_ZERO: Final = "activate_from_zero"
BELOW_MIN: Final = "below_min"
AT_ZERO: Final = "at_zero"
NO_CREATE_SPEC: Final = "no_create_spec"
DEPLOYMENT_INITIALIZING: Final = "deployment_initializing"
DEPLOYMENT_TERMINATING: Final = "deployment_terminating"
DEPLOYMENT_FAILED: Final = "deployment_failed"
RECREATE: Final = "recreate"
RECREATE_BACKOFF: Final = "recreate_backoff"
PAUSED: Final = "paused"
OVERRIDE: Final = "override"
OBJECTIVE_SIZED: Final = "objective_sized"
OBJECTIVE_BACKLOG: Final = "objective_backlog"
OBJECTIVE_DRAINS_FIRST: Final = "objective_drains_first"
OBJECTIVE_FORECAST: Final = "objective_forecast"
OBJECTIVE_STARTUP_HOLD: Final = "objective_startup_hold"
OBJECTIVE_CORRECTED: Final = "objective_corrected"
OBJECTIVE_SERVICE_UNREAD: Final = "objective_service_unread"

REASONS: dict[str, str] = {
    SCALE_UP: "the replica count goes up",
    SCALE_DOWN: "the replica count goes down",
    NO_CHANGE: "the metrics ask for the current replica count",
    WITHIN_TOLERANCE: "every usage ratio is inside the tolerance band: nothing changes",
    STABILIZED_DOWN: "scale-down held to the highest recommendation in the down window",
    STABILIZED_UP: "scale-up held to the lowest recommendation in the up window",
    RATE_LIMITED_UP: "scale-up capped by the scale_up rate policies for the current period",
    RATE_LIMITED_DOWN: "scale-down capped by the scale_down rate policies for the current period",
    SCALE_UP_DISABLED: "scale_up.select is disabled: never scale up on metrics",
    SCALE_DOWN_DISABLED: "scale_down.select is disabled: never scale down on metrics",
    COOLDOWN_UP: "scale-up waits for scale_up.cooldown after the last action",
    COOLDOWN_DOWN: "scale-down waits for scale_down.cooldown after the last action",
    PANIC: "burst: recommendation >= panic.threshold x ready replicas; scale up at once",
    PANIC_HOLD: "no scale-down until panic.hold has passed since the last panic",
    MAX_REPLICAS: "capped at replicas.max",
    MIN_REPLICAS: "raised to replicas.min",
    SCHEDULE_MIN: "raised to (or kept at) the minimum of an active schedule window",
    SCHEDULE_MAX: "capped at the maximum of an active schedule window",
    COST_CAP: "capped so replicas x replica_hourly_usd stays within max_hourly_usd",
    METRICS_MISSING_NO_SCALE_DOWN: "some metrics failed to read: scale up on the rest, never down",
    METRIC_FAILURE_HOLD: "metrics failed on_metric_failure.after times in a row: hold",
    FALLBACK: "metrics failed on_metric_failure.after times in a row: go to the fallback count",
    IDLE_TO_ZERO: "every activation metric stayed at or below its threshold for "
    "scale_to_zero.after: delete the deployment",
    IDLE_PENDING: "idle (activation metrics at or below threshold) but not yet for "
    "scale_to_zero.after",
    ACTIVATE_FROM_ZERO: "the deployment is absent and an activation metric is above its "
    "threshold: create it",
    BELOW_MIN: "the deployment is absent but replicas.min > 0: create it",
    AT_ZERO: "the deployment is absent and no activation metric is above its threshold",
    NO_CREATE_SPEC: "the deployment would be created but the policy has no deployment.create",
    DEPLOYMENT_INITIALIZING: "the deployment is initializing: no action until it is ready",
    DEPLOYMENT_TERMINATING: "the deployment is terminating: no action until it is gone",
    DEPLOYMENT_FAILED: "the provider reports the deployment failed",
    RECREATE: "on_deployment_failure is recreate: delete the failed deployment and create it again",
    RECREATE_BACKOFF: "waiting for the recreate backoff to pass before the next attempt",
    PAUSED: "scaling is paused (policy.paused or the admin pause): no action",
    OVERRIDE: "an admin override holds the replica count until it expires",
    OBJECTIVE_SIZED: "the queueing model sized the deployment for the latency objective",
    OBJECTIVE_BACKLOG: "more replicas to clear the current queue within the objective",
    OBJECTIVE_DRAINS_FIRST: "the queue clears on the replicas at hand before a start-up "
    "would finish: no replica bought for it",
    OBJECTIVE_FORECAST: "pre-warm: sized for the demand profile one start-up time ahead",
    OBJECTIVE_STARTUP_HOLD: "kept a count sized within the last start-up time: it would be "
    "needed again before a new replica could start",
    OBJECTIVE_CORRECTED: "the service time is corrected by the observed vs predicted wait",
    OBJECTIVE_SERVICE_UNREAD: "traffic but no service time read yet (no request finished): "
    "sized with the last one read, or from the requests in flight and queued; no scale down",
}
