"""Peer table: Knative KPA panic cases, run through `decide`.

Transcribed from knative/serving (Apache-2.0), pkg/autoscaler/scaling/autoscaler_test.go;
each case names its test. The decider there uses threshold 2 (200 %), a 60 s stable window
and rate limits of x10 per decision relative to ready pods; a concurrency reading C against
target T recommends ceil(C / T) (`average_value` target T), panic hold = stable window, no
HPA down window. Only cases whose stable and panic readings agree, or where the panic
reading decides, map onto our one reading per evaluation.

Left out, and why: cases whose stable and panic readings differ and both matter
(TestAutoscalerUnpanicAfterSlowIncrease's last step, AutoscalerPanicStable*ThanPanic,
Autoscaler0TBC); excess burst capacity (EBC) and activation scale; rate limits by a
non-integer factor (MaxScaleDownRate 1.1); TestStartInPanicMode (the decider starts in
panic when created with >= 2 pods: the core has no creation event); scale to zero
(the activator's business, and ours goes by deleting after scale_to_zero.after).
"""

from __future__ import annotations

from autoscaler.core import CoreState, Decision, decide, initial_state
from autoscaler.core import reasons as R
from autoscaler.policy.model import Panic, Policy, ScalingRules

from .builders import T0, metric, policy, ready, rules


def kpa(target: float, up: ScalingRules | None = None, down: ScalingRules | None = None) -> Policy:
    return policy(
        metrics=(metric("c", "average_value", target),),
        min=1,
        max=5000,
        scale_up=up or rules(),
        scale_down=down or rules(),
        panic=Panic(threshold=2.0, hold=60.0),
    )


def steps(p: Policy, seq: list[tuple[float, int, float]]) -> list[tuple[Decision, CoreState]]:
    """Run (seconds after T0, ready replicas, concurrency) steps; replicas = ready."""
    s = initial_state()
    out = []
    for dt, count, conc in seq:
        d, s = decide(p, s, ready(count, count, c=conc), T0 + dt)
        out.append((d, s))
    return out


def test_panic_mode_exponential_track_and_stabilize() -> None:
    # TestAutoscalerPanicModeExponentialTrackAndStabilize: target 1
    seq = [(0.0, 1, 6.0), (1.0, 6, 36.0), (2.0, 36, 216.0), (2.0, 216, 1296.0), (3.0, 1296, 1296.0)]
    got = [d.replicas for d, _ in steps(kpa(1.0), seq)]
    assert got == [6, 36, 216, 1296, 1296]


def test_panic_then_unpanic_scale_down() -> None:
    # TestAutoscalerPanicThenUnPanicScaleDown: target 10; panic at 1000 -> 100, held while
    # traffic drops, down to 1 after the 60 s window
    seq = [(0.0, 1, 100.0), (0.0, 10, 1000.0), (30.0, 100, 1.0), (61.0, 100, 1.0)]
    out = steps(kpa(10.0), seq)
    assert [d.replicas for d, _ in out] == [10, 100, 100, 1]
    assert R.PANIC_HOLD in out[2][0].reasons


def test_extend_panic_window() -> None:
    # TestAutoscalerExtendPanicWindow: 10 ready, panic reading 25 -> 25; 30 s later 40
    # ready, 80 (still >= 2 x 40) -> 80 and the panic time moves
    out = steps(kpa(1.0), [(0.0, 10, 25.0), (30.0, 40, 80.0)])
    assert [d.replicas for d, _ in out] == [25, 80]
    assert out[1][1].panic_until == T0 + 30.0 + 60.0


def test_stable_mode() -> None:
    # TestAutoscalerStableModeDecrease: target 10, 8 ready: 100 -> 10 (no panic), 50 -> 5
    out = steps(kpa(10.0), [(0.0, 8, 100.0), (2.0, 10, 50.0)])
    assert [d.replicas for d, _ in out] == [10, 5]
    assert R.PANIC not in out[0][0].reasons


def test_autoscaler_scale_table() -> None:
    # TestAutoscalerScale: AutoscalerPanicModeDoublePodCount (1 ready, 100 -> 10, panic),
    # AutoscalerStableModeNoChange (1 ready, 50 -> 5), ...AlreadyScaled (5 ready, 50 -> 5)
    for count, conc, expected in ((1, 100.0, 10), (1, 50.0, 5), (5, 50.0, 5)):
        [(d, _)] = steps(kpa(10.0), [(0.0, count, conc)])
        assert d.replicas == expected, (count, conc, d)


def test_rate_limits() -> None:
    # TestAutoscalerRateLimitScaleUp: x10 per decision (a percent policy whose period is
    # shorter than the time between decisions). TestAutoscalerRateLimitScaleDown (floor(100 /
    # 10) = 10) does not map: a -90 % policy truncates 100 x (1 - 0.9) = 9.999... to 9, as
    # HPA's own int32 conversion does.
    up = rules(policies=(("percent", 900, 1.0),))
    out = steps(kpa(10.0, up), [(0.0, 1, 1001.0), (2.0, 10, 1001.0)])
    assert [d.replicas for d, _ in out] == [10, 100]
