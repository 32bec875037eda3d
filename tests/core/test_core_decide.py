"""The whole pipeline through `decide`: status gating, pause, override, action_failed, and
end-to-end HPA / Knative scenarios with reasons and messages."""

from __future__ import annotations

import pytest

from autoscaler import core
from autoscaler.core import (
    REASONS,
    CoreState,
    Decision,
    action_failed,
    decide,
    initial_state,
    with_override,
    with_paused,
)
from autoscaler.core import reasons as R
from autoscaler.core.status import GATE
from autoscaler.core.types import STATUSES, DeploymentState, Observation
from autoscaler.policy.model import Panic, Policy

from .builders import T0, metric, policy, ready, rules


def test_exports() -> None:
    for name in (
        "decide",
        "CoreState",
        "initial_state",
        "with_paused",
        "with_override",
        "action_failed",
        "REASONS",
        "Observation",
        "Decision",
    ):
        assert hasattr(core, name)


def test_every_reason_constant_is_documented() -> None:
    codes = {v for k, v in vars(R).items() if k.isupper() and isinstance(v, str)}
    assert codes == set(REASONS)
    assert all(code.islower() and " " not in code for code in REASONS)
    assert all(REASONS[c] for c in REASONS)


@pytest.mark.parametrize(
    ("status", "reason"),
    [("initializing", R.DEPLOYMENT_INITIALIZING), ("terminating", R.DEPLOYMENT_TERMINATING)],
)
def test_waiting_statuses_take_no_action(status: str, reason: str) -> None:
    s = initial_state()
    obs = Observation(DeploymentState(status, 2), {"waiting": 1000.0})  # type: ignore[arg-type]
    d, s2 = decide(policy(), s, obs, T0)
    assert (d.action, d.replicas, d.reasons) == ("none", 2, (reason,))
    assert s2 == s


def test_status_gate_covers_the_whole_vocabulary() -> None:
    assert set(GATE) == set(STATUSES)
    for status, gate in GATE.items():
        # a hold says why; the other handlings carry their own reasons
        assert bool(gate.reason) == (gate.handling == "hold"), status
        assert (gate.reason in REASONS) if gate.reason else True


# status -> (action, reasons) for a deployment of 2 under heavy load, no create spec needed
# by any row but absent (whose reading here asks for replicas: create).
@pytest.mark.parametrize(
    ("status", "replicas", "action", "reasons"),
    [
        ("ready", 2, "scale", (R.SCALE_UP,)),
        ("initializing", 2, "none", (R.DEPLOYMENT_INITIALIZING,)),
        ("terminating", 2, "none", (R.DEPLOYMENT_TERMINATING,)),
        ("failed", 2, "none", (R.DEPLOYMENT_FAILED,)),
        ("absent", 0, "create", (R.BELOW_MIN,)),
    ],
)
def test_status_gate_table(
    status: str, replicas: int, action: str, reasons: tuple[str, ...]
) -> None:
    obs = Observation(DeploymentState(status, replicas), {"waiting": 1000.0})  # type: ignore[arg-type]
    d, _ = decide(policy(max=3), initial_state(), obs, T0)
    assert (d.action, d.reasons[: len(reasons)]) == (action, reasons)
    assert (
        GATE[status].handling
        == {
            "ready": "decide",
            "initializing": "hold",
            "terminating": "hold",
            "failed": "failure",
            "absent": "zero",
        }[status]
    )


def test_paused_policy_and_admin_pause() -> None:
    d, _ = decide(policy(paused=True), initial_state(), ready(2, waiting=100.0), T0)
    assert (d.action, d.reasons) == ("none", (R.PAUSED,))
    s = with_paused(initial_state(), True)
    d, s2 = decide(policy(), s, ready(2, waiting=100.0), T0)
    assert (d.action, d.replicas, d.reasons) == ("none", 2, (R.PAUSED,))
    d, _ = decide(policy(), with_paused(s2, False), ready(2, waiting=100.0), T0)
    assert d.action == "scale"


def test_override_holds_then_expires() -> None:
    p = policy(max=5)
    s = with_override(initial_state(), 9, T0 + 60)
    d, s = decide(p, s, ready(2, waiting=0.0), T0)
    assert (d.action, d.replicas) == ("scale", 5)  # still clamped to max
    assert d.reasons == (R.SCALE_UP, R.OVERRIDE, R.MAX_REPLICAS)
    d, s = decide(p, s, ready(5, waiting=0.0), T0 + 30)
    assert (d.action, d.reasons) == ("none", (R.OVERRIDE, R.MAX_REPLICAS))
    d, s = decide(p, s, ready(5, waiting=0.0), T0 + 60)  # expired: normal pipeline again
    assert R.OVERRIDE not in d.reasons and s.override is None


def test_override_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="replicas"):
        with_override(initial_state(), 0, T0)
    with pytest.raises(ValueError, match="until"):
        with_override(initial_state(), 2, float("nan"))
    assert with_override(with_override(initial_state(), 2, T0), None).override is None


def test_action_failed_forgets_the_action_but_keeps_the_load() -> None:
    p = policy(scale_up=rules(cooldown=300.0), max=20)
    s0 = initial_state()
    d, s1 = decide(p, s0, ready(2, waiting=40.0), T0)
    assert d.action == "scale" and s1.events and s1.last_action == (T0, "scale_up")
    s2 = action_failed(s1, d, T0)
    assert s2.events == () and s2.last_action is None
    assert s2.down_history == s1.down_history  # recommendations stay
    # without the undo the cooldown would block the retry; with it the retry goes through
    d_retry, _ = decide(p, s2, ready(2, waiting=40.0), T0 + 15)
    assert d_retry.action == "scale"
    d_blocked, _ = decide(p, s1, ready(2, waiting=40.0), T0 + 15)
    assert d_blocked.reasons == (R.COOLDOWN_UP,)


def test_action_failed_ignores_no_action() -> None:
    d, s = decide(policy(), initial_state(), ready(1, waiting=5.0), T0)
    assert d.action == "none"
    assert action_failed(s, d, T0) is s


def test_hpa_scale_up_then_stabilized_down_for_the_default_window() -> None:
    """HPA defaults: immediate scale-up (rate-limited), scale-down only after 300 s."""
    p = policy(max=20)
    s = initial_state()
    d, s = decide(p, s, ready(3, waiting=37.0), T0)
    assert (d.action, d.replicas, d.desired) == ("scale", 7, 8)
    assert d.reasons == (R.SCALE_UP, R.RATE_LIMITED_UP)
    assert d.message == "waiting=37 > 5/replica x 3 -> 8; limited by replicas policy (4/15s) to 7"
    d, s = decide(p, s, ready(7, waiting=37.0), T0 + 15)  # 37 / (5 x 7) = 1.06: in the band
    assert (d.replicas, d.reasons) == (7, (R.WITHIN_TOLERANCE,))
    d, s = decide(p, s, ready(7, waiting=40.0), T0 + 15)  # 1.14: out of the band
    assert d.replicas == 8
    replicas = 8
    seen = []
    for i in range(2, 30):
        d, s = decide(p, s, ready(replicas, waiting=5.0), T0 + 15 * i)
        replicas = d.replicas
        seen.append((15 * i, d.replicas, d.reasons))
    # load fell at t=30; the last 8 was recommended at t=15, so it holds until t=315
    assert all(r == 8 and R.STABILIZED_DOWN in why for t, r, why in seen if t < 315)
    first_down = next((t, r) for t, r, _ in seen if r < 8)
    assert first_down == (315, 1)


def test_knative_panic_scales_at_once_and_holds() -> None:
    p = policy(
        max=50,
        scale_up=rules(window=120.0, cooldown=300.0),
        scale_down=rules(window=0.0),
        panic=Panic(threshold=2.0, hold=60.0),
    )
    s = CoreState(last_action=(T0 - 10.0, "scale_up"))  # inside the up cooldown
    d, s = decide(p, s, ready(2, waiting=10.0), T0)  # 2 -> ceil(10/5)=2: nothing
    assert d.action == "none"
    d, s = decide(p, s, ready(2, waiting=30.0), T0 + 15)  # 6 >= 2 x 2 ready: panic
    assert (d.action, d.replicas) == ("scale", 6)
    assert d.reasons == (R.SCALE_UP, R.PANIC)
    assert s.panic_until == T0 + 15 + 60
    d, s = decide(p, s, ready(6, waiting=5.0), T0 + 30)  # load gone, but hold
    assert (d.action, d.reasons) == ("none", (R.PANIC_HOLD,))
    d, s = decide(p, s, ready(6, waiting=5.0), T0 + 75)  # hold over
    assert (d.action, d.replicas) == ("scale", 1)
    assert s.panic_until is None


def test_without_panic_the_up_window_and_cooldown_apply() -> None:
    p = policy(max=50, scale_up=rules(window=120.0, cooldown=300.0))
    s = CoreState(last_action=(T0 - 10.0, "scale_up"))
    d, s = decide(p, s, ready(2, waiting=10.0), T0)
    d, s = decide(p, s, ready(2, waiting=30.0), T0 + 15)
    assert (d.action, d.reasons) == ("none", (R.STABILIZED_UP,))


def test_within_tolerance_is_no_change() -> None:
    p = policy(metrics=(metric("kv", "utilization", 0.8),))
    d, _ = decide(p, initial_state(), ready(4, kv=0.84), T0)
    assert (d.action, d.replicas, d.reasons) == ("none", 4, (R.WITHIN_TOLERANCE,))


def test_current_outside_bounds_is_corrected_at_once() -> None:
    p = policy(min=2, max=4, scale_down=rules(window=300.0, cooldown=600.0))
    d, _ = decide(p, CoreState(last_action=(T0, "scale_up")), ready(9, waiting=100.0), T0)
    assert (d.action, d.replicas, d.reasons[0]) == ("scale", 4, R.SCALE_DOWN)
    assert R.MAX_REPLICAS in d.reasons
    d, _ = decide(p, initial_state(), ready(1, waiting=0.0), T0)
    assert (d.action, d.replicas) == ("scale", 2)
    assert R.MIN_REPLICAS in d.reasons


def test_replicas_after_decision_conventions() -> None:
    p: Policy = policy()
    d: Decision
    d, _ = decide(
        p, initial_state(), Observation(DeploymentState("absent", 0), {"waiting": 0.0}), T0
    )
    assert d.replicas == 0 or d.action == "create"
    d, _ = decide(p, initial_state(), ready(3, waiting=15.0), T0)
    assert (d.action, d.replicas) == ("none", 3)


def test_time_going_backwards_does_not_break_the_state() -> None:
    p = policy(max=20)
    s = initial_state()
    _, s = decide(p, s, ready(3, waiting=60.0), T0 + 1000)
    d, s = decide(p, s, ready(7, waiting=5.0), T0)  # earlier than the recorded entries
    assert all(t <= T0 for t, _ in s.down_history + s.up_history + s.events)
    assert d.replicas >= 1
