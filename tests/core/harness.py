"""A stand-in deployment plus an independent checker of the product invariants.

`World` plays the provider (the next observation follows the decision, with create ->
initializing -> ready and delete -> terminating -> absent), feeds `decide`, and `Checker`
recomputes from its own records what product.md promises, without calling the stages:
bounds (1), nothing changes inside the tolerance band (2), more load never fewer replicas
(3), no scale-down inside the down window / cooldown / panic hold and no step beyond the
rate policies (4), no scale-down on failed metrics (5), same inputs same output (6), plus a
bounded, JSON round-tripping state. Schedule activity is the one thing it borrows
(`schedule.is_active`, which has its own table tests).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from autoscaler.core import REASONS, CoreState, Decision, decide, from_dict, initial_state, to_dict
from autoscaler.core import reasons as R
from autoscaler.core.schedule import is_active
from autoscaler.core.types import DeploymentState, Observation
from autoscaler.policy.model import Policy, ScalingRules

STATE_LIMIT_BYTES = 4096


def independent_bounds(policy: Policy, now: float) -> tuple[int, int]:
    lower, upper = max(1, policy.replicas.min), policy.replicas.max
    for s in policy.schedules:
        if is_active(s, now):
            if s.min is not None:
                lower = max(lower, s.min)
            if s.max is not None:
                upper = min(upper, s.max)
    cost = policy.cost
    if cost.max_hourly_usd is not None and cost.replica_hourly_usd:
        upper = min(upper, math.floor(cost.max_hourly_usd / cost.replica_hourly_usd + 1e-9))
    return min(lower, upper), upper


def _changes(events: list[tuple[float, int]], now: float, period: float) -> int:
    return sum(c for t, c in events if now - period < t <= now)


def up_rate_ceiling(
    rules: ScalingRules, current: int, events: list[tuple[float, int]], now: float
) -> float:
    if rules.select == "disabled":
        return current
    if not rules.policies:
        return math.inf
    proposals = []
    for p in rules.policies:
        start = current - _changes(events, now, p.period)
        proposals.append(
            start + p.value
            if p.type == "replicas"
            else math.ceil(start * (1 + p.value / 100) - 1e-9)
        )
    best = max(proposals) if rules.select == "max" else min(proposals)
    return max(best, current)


def down_rate_floor(
    rules: ScalingRules, current: int, events: list[tuple[float, int]], now: float
) -> float:
    if rules.select == "disabled":
        return current
    if not rules.policies:
        return 0
    proposals = []
    for p in rules.policies:
        start = current - _changes(events, now, p.period)
        proposals.append(
            start - p.value if p.type == "replicas" else int(start * (1 - p.value / 100))
        )
    best = min(proposals) if rules.select == "max" else max(proposals)
    return min(best, current)


def failed_names(policy: Policy, metrics: Mapping[str, float | None]) -> list[str]:
    return [m.name for m in policy.metrics if metrics.get(m.name) is None]


def is_idle(policy: Policy, metrics: Mapping[str, float | None]) -> bool:
    if failed_names(policy, metrics):
        return False
    stz = policy.scale_to_zero
    acts = stz.activation if stz and stz.activation else ()
    pairs = [(a.metric, a.threshold) for a in acts] or [(m.name, 0.0) for m in policy.metrics]
    return all((metrics.get(n) or 0.0) <= th for n, th in pairs)


@dataclass
class Checker:
    policy: Policy
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    events: list[tuple[float, int]] = field(default_factory=list)
    last_action_at: float | None = None
    panic_until: float | None = None
    idle_since: float | None = None
    steps: int = 0

    def check(
        self,
        state: CoreState,
        obs: Observation,
        now: float,
        decision: Decision,
        new_state: CoreState,
    ) -> None:
        """Assert every invariant for one decision, then record what later checks need."""
        p = self.policy
        self.steps += 1
        assert all(r in REASONS for r in decision.reasons), decision.reasons
        assert decision.reasons, "every decision carries a reason"
        # 6: same inputs, same output (also through the JSON form of the state)
        again = decide(p, state, obs, now)
        assert again == (decision, new_state)
        assert decide(p, from_dict(to_dict(state)), obs, now) == again
        # the state is bounded and round-trips
        blob = json.dumps(to_dict(new_state))
        assert len(blob) <= STATE_LIMIT_BYTES, len(blob)
        assert from_dict(json.loads(blob)) == new_state
        paused = p.paused or state.paused
        if obs.status == "ready" and decision.action != "delete" and not paused:
            self._check_windows_trimmed(new_state, now)
        else:  # other paths may leave old entries, but never add any
            assert set(new_state.down_history) <= set(state.down_history)
            assert set(new_state.up_history) <= set(state.up_history)
            assert set(new_state.events) <= set(state.events)

        lower, upper = independent_bounds(p, now)
        current = obs.replicas
        failed = failed_names(p, obs.metrics)
        considered = obs.status in ("ready", "absent") and not paused
        if considered:
            if obs.status == "absent" or not is_idle(p, obs.metrics):
                self.idle_since = None
            elif self.idle_since is None:
                self.idle_since = now

        if considered:
            self._check_more_load(state, obs, now, decision)
        if obs.status == "ready" and considered:
            # 2: inside the tolerance band (and the bounds) nothing changes
            if not failed and lower <= current <= upper and self._in_band(obs):
                assert decision.action in ("none", "delete"), decision
            if decision.action == "delete":
                # 1: zero only with scale-to-zero on and idle for the whole period
                assert p.scale_to_zero is not None and p.replicas.min == 0
                assert self.idle_since is not None
                assert now - self.idle_since >= p.scale_to_zero.after
                assert not failed  # 5
            else:
                # 1: within [min, max], the schedule bounds and the cost cap
                assert lower <= decision.replicas <= upper, (lower, decision, upper)
            if decision.action == "scale" and decision.replicas < current and current <= upper:
                self._check_scale_down(current, decision, now, failed)
            if decision.action == "scale" and decision.replicas > current and current >= lower:
                self._check_scale_up(current, decision, now)
            # the core does not remember "keep current, metrics failed" as a recommendation
            if decision.action != "delete" and not (failed and decision.desired == current):
                self.recommendations.append((now, decision.desired or 0))
        if obs.status == "absent" and decision.action == "create":
            assert 1 <= decision.replicas <= upper
        if decision.action == "scale":
            self.events.append((now, decision.replicas - current))
        if decision.action != "none":
            self.last_action_at = now
        if R.PANIC in decision.reasons and p.behavior.panic is not None:
            self.panic_until = now + p.behavior.panic.hold
        if obs.status == "absent" and considered:
            self.panic_until = None  # a new deployment starts without a panic

    def _in_band(self, obs: Observation) -> bool:
        tol = self.policy.behavior.tolerance
        for m in self.policy.metrics:
            value = max(obs.metrics.get(m.name) or 0.0, 0.0)
            if m.target.type == "average_value":
                ratio = value / (m.target.value * max(obs.replicas, 1))
            else:
                ratio = value / m.target.value
            if ratio > 1 and ratio - 1 > tol.up + 1e-9:
                return False
            if ratio <= 1 and 1 - ratio > tol.down + 1e-9:
                return False
        return True

    def _check_more_load(
        self, state: CoreState, obs: Observation, now: float, decision: Decision
    ) -> None:
        """3: raising any one reading, all else equal, never gives fewer replicas."""
        for name, value in obs.metrics.items():
            if value is None:
                continue
            more = dict(obs.metrics)
            more[name] = value * 1.5 + 1.0
            bumped = Observation(obs.deployment, more)
            high, _ = decide(self.policy, state, bumped, now)
            assert high.replicas >= decision.replicas, (name, decision, high)

    def _check_scale_down(self, current: int, d: Decision, now: float, failed: list[str]) -> None:
        down = self.policy.behavior.scale_down
        # 5: failed metrics never cause a scale-down (bounds may: current <= upper here)
        assert not failed, (d, failed)
        # 4: not below the highest recommendation in the down window ...
        window = [r for t, r in self.recommendations if t > now - down.stabilization_window]
        window_max = max([*window, d.desired or 0])
        assert d.replicas >= min(current, window_max), (d, window_max)
        # ... nor inside the cooldown or the panic hold ...
        if self.last_action_at is not None and down.cooldown > 0:
            assert now - self.last_action_at >= down.cooldown
        assert self.panic_until is None or now >= self.panic_until
        # ... nor by a bigger step than the rate policies allow
        assert d.replicas >= down_rate_floor(down, current, self.events, now)

    def _check_scale_up(self, current: int, d: Decision, now: float) -> None:
        up = self.policy.behavior.scale_up
        if R.PANIC not in d.reasons and self.last_action_at is not None and up.cooldown > 0:
            assert now - self.last_action_at >= up.cooldown
        assert d.replicas <= up_rate_ceiling(up, current, self.events, now), d

    def _check_windows_trimmed(self, s: CoreState, now: float) -> None:
        """After a ready evaluation only what a window or period can still see is kept."""
        b = self.policy.behavior
        periods = [p.period for r in (b.scale_up, b.scale_down) for p in r.policies]
        longest = max(periods, default=0.0)
        assert all(now - longest < t <= now for t, _ in s.events)
        assert all(now - b.scale_down.stabilization_window < t <= now for t, _ in s.down_history)
        assert all(now - b.scale_up.stabilization_window < t <= now for t, _ in s.up_history)


@dataclass
class World:
    """The deployment as the provider would report it, driven by the decisions."""

    policy: Policy
    status: str = "ready"
    replicas: int = 1
    pending: int = 0  # evaluations left in initializing / terminating
    state: CoreState = field(default_factory=initial_state)
    checker: Checker | None = None

    def __post_init__(self) -> None:
        self.checker = Checker(self.policy)

    def observe(self, metrics: Mapping[str, float | None]) -> Observation:
        return Observation(DeploymentState(self.status, self.replicas), dict(metrics))  # type: ignore[arg-type]

    def step(self, metrics: Mapping[str, float | None], now: float) -> Decision:
        obs = self.observe(metrics)
        decision, new_state = decide(self.policy, self.state, obs, now)
        assert self.checker is not None
        self.checker.check(self.state, obs, now, decision, new_state)
        self.state = new_state
        self.apply(decision)
        return decision

    def apply(self, d: Decision) -> None:
        if d.action == "scale":
            self.replicas = d.replicas
        elif d.action == "create":
            self.status, self.replicas, self.pending = "initializing", d.replicas, 2
        elif d.action == "delete":
            self.status, self.pending = "terminating", 1
        elif self.status in ("initializing", "terminating"):
            self.pending -= 1
            if self.pending <= 0:
                if self.status == "initializing":
                    self.status = "ready"
                else:
                    self.status, self.replicas = "absent", 0

    def force_status(self, status: str) -> None:
        """The provider changed something on its own (a failure, a recovery)."""
        self.status = status
        if status == "absent":
            self.replicas = 0
        elif status != "failed" and self.replicas == 0:
            self.replicas = 1
