"""The queueing math of the objective stage against independent references.

References are computed here by the textbook formulas, summed term by term in log space
(slow, no recurrence, no shortcut start), plus classical closed forms (M/M/1, M/M/2).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autoscaler.core import queueing as Q


def slow_erlang_c(c: int, a: float) -> float:
    """C(c, a) = [a^c / c! x c / (c - a)] / [sum_{k<c} a^k / k! + a^c / c! x c / (c - a)]."""
    if a >= c:
        return 1.0
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    top = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    peak = max([*logs, top])
    head = sum(math.exp(x - peak) for x in logs)
    tail = math.exp(top - peak)
    return tail / (head + tail)


def slow_wait(c: int, lam: float, s: float, cv: float, q: float) -> float:
    a = lam * s
    if a <= 0:
        return 0.0
    if a >= c:
        return math.inf
    prob = slow_erlang_c(c, a)
    if prob <= 1 - q:
        return 0.0
    return (1 + cv * cv) / 2 * s / (c - a) * math.log(prob / (1 - q))


def test_classical_closed_forms() -> None:
    # M/M/1: P(wait) = rho. M/M/2 at a = 1: P(wait) = a^2 / (2 + a) / ... = 1/3.
    assert Q.erlang_c(1, 0.5) == pytest.approx(0.5, rel=1e-12)
    assert Q.erlang_c(1, 0.9) == pytest.approx(0.9, rel=1e-12)
    assert Q.erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    # M/M/1 wait tail: P(W > t) = rho exp(-(1 - rho) t / s): the p99 with rho 0.9, s 1.
    assert Q.wait_quantile(1, 0.9, 1.0, 1.0, 0.99) == pytest.approx(
        math.log(0.9 / 0.01) / 0.1, rel=1e-12
    )
    assert Q.erlang_c(5, 0.0) == 0.0
    assert Q.erlang_c(5, 5.0) == 1.0
    assert Q.wait_quantile(4, 2.0, 2.0, 1.0, 0.99) == math.inf  # a = c: unstable


@pytest.mark.parametrize(
    ("c", "a"),
    [
        (1, 0.3),
        (2, 1.5),
        (10, 8.0),
        (16, 15.9),
        (48, 40.0),
        (20, 16.5),  # the shortcut start (a > 16) begins here
        (30, 25.5),
        (40, 30.0),
        (160, 150.0),
        (200, 144.5),
        (320, 300.0),
        (1000, 950.0),
        (2100, 2000.0),
        (2500, 2000.0),
    ],
)
def test_erlang_c_table(c: int, a: float) -> None:
    assert Q.erlang_c(c, a) == pytest.approx(slow_erlang_c(c, a), rel=2e-6, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(0.01, 3000.0),
    extra=st.floats(0.0, 300.0),
)
def test_erlang_c_matches_the_slow_sum(a: float, extra: float) -> None:
    c = max(1, math.floor(a) + 1 + int(extra))
    assert Q.erlang_c(c, a) == pytest.approx(slow_erlang_c(c, a), rel=2e-6, abs=1e-12)


def brute_replicas(lam: float, s: float, cv: float, q: float, wait: float, conc: int) -> int:
    n = 0
    while slow_wait(n * conc, lam, s, cv, q) > wait:
        n += 1
    return n


@settings(max_examples=150, deadline=None)
@given(
    lam=st.floats(0.0, 60.0),
    s=st.floats(0.05, 30.0),
    cv=st.floats(0.0, 3.0),
    q=st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.999]),
    wait=st.floats(0.5, 60.0),  # within the walk (Q.MAX_STEPS); beyond it, the bound answers
    conc=st.integers(1, 64),
)
@example(lam=5e-324, s=1.0, cv=0.0, q=0.9, wait=1.0, conc=1)  # denormal load: 0 x inf
def test_smallest_count_is_the_brute_force_one(
    lam: float, s: float, cv: float, q: float, wait: float, conc: int
) -> None:
    got = Q.replicas_for_wait(lam, s, cv, q, wait, conc)
    want = brute_replicas(lam, s, cv, q, wait, conc)
    if got != want:
        # Only a hair's breadth from the objective may round either way.
        edge = slow_wait(min(got, want) * conc, lam, s, cv, q)
        assert edge == pytest.approx(wait, rel=1e-5)
    if got > 0:
        assert slow_wait(got * conc, lam, s, cv, q) <= wait * (1 + 1e-5)


def test_far_objectives_answer_with_a_safe_bound() -> None:
    # 1 ms objective on a 60 s service: the walk would be long; the bound answers, and meets it.
    n = Q.replicas_for_wait(50.0, 60.0, 1.0, 0.99, 0.001, 1)
    assert Q.wait_quantile(n, 50.0, 60.0, 1.0, 0.99) <= 0.001
    assert Q.replicas_for_wait(1e300, 10.0, 1.0, 0.99, 1.0, 16, cap=1000) == 1000


def test_drain() -> None:
    assert Q.drain_time(0.0, 16, 1.0, 1.0) == 0.0
    assert Q.drain_time(100.0, 16, 6.0, 2.0) == pytest.approx(100 / (8 - 6))
    assert Q.drain_time(100.0, 16, 8.0, 2.0) == math.inf
    # 100 queued within 5 s while 6/s arrive, 2 s each: 12 slots for the arrivals, and a
    # spare slot starts 1 + 5 / 2 queued ones within 5 s: 100 / 3.5 = 28.6 more: 3 x 16.
    assert Q.replicas_for_drain(100.0, 6.0, 2.0, 5.0, 16) == 3
    # Long requests (100 s) against a 5 s objective: about one slot per queued request.
    assert Q.replicas_for_drain(8.0, 0.5, 100.0, 5.0, 16) == math.ceil((50 + 8 * 100 / 105) / 16)
    assert Q.replicas_for_drain(0.0, 6.0, 2.0, 5.0, 16) == 0


@settings(max_examples=150, deadline=None)
@given(
    lam=st.floats(0.0, 200.0),
    s=st.floats(0.05, 30.0),
    cv=st.floats(0.0, 3.0),
    wait=st.floats(0.5, 60.0),
    conc=st.integers(1, 64),
    ready=st.integers(0, 400),
)
def test_one_pass_gives_the_wait_at_the_ready_count_too(
    lam: float, s: float, cv: float, wait: float, conc: int, ready: int
) -> None:
    n, at_n, at_ready = Q.size_for_wait(lam, s, cv, 0.99, wait, conc, ready)
    assert n == Q.replicas_for_wait(lam, s, cv, 0.99, wait, conc)
    if not math.isnan(at_n):
        assert at_n == pytest.approx(Q.wait_quantile(n * conc, lam, s, cv, 0.99), rel=1e-9)
    if not math.isnan(at_ready):
        want = Q.wait_quantile(ready * conc, lam, s, cv, 0.99)
        assert at_ready == pytest.approx(want, rel=1e-9, abs=1e-12)
    else:  # only when the walk answered with its bound, or ready is far above it
        assert ready * conc - n * conc > Q.MAX_STEPS or math.isnan(at_n)
