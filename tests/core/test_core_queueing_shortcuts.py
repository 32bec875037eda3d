"""The queueing shortcuts change no result: `size_for_wait` against the plain walk it replaced
(every server one step, the search evaluating each count in turn), compared to the bit, and
`_no_wait`'s proof against the exact Erlang C.

`plain_size_for_wait` is the search as it was before the shortcuts (main, 2026-12): the same
start (`Q._start`) and the same walk segments, one step per loop turn, no `_no_wait`.
"""

from __future__ import annotations

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from autoscaler.core import queueing as Q

from .test_core_queueing import slow_erlang_c


def plain_advance(inv_b: float, k: int, c: int, a: float) -> float:
    step = 1.0 / a
    x = k / a
    for _ in range(c - k):
        x += step
        inv_b = 1.0 + x * inv_b
    return inv_b


def plain_size_for_wait(
    lam: float,
    s: float,
    cv: float,
    q: float,
    wait: float,
    concurrency: int,
    ready: int = 0,
    least: int = 0,
    cap: int = 1_000_000,
    ready_above: float = 0.0,
) -> tuple[int, float, float]:
    a = lam * s
    least = max(least, 0)
    if a <= 0.0:
        return min(least, cap), 0.0, 0.0
    if not math.isfinite(a):
        return cap, math.inf, math.inf
    k = (1.0 + cv * cv) / 2.0
    tail = 1.0 - q
    ks = k * s
    n = max(least, math.floor(a / concurrency) + 1)
    bound = math.ceil((a + ks * math.log(1.0 / tail) / wait) / concurrency)
    ready_c = ready * concurrency
    ready_wait = math.inf if ready_c <= a else math.nan
    if n >= cap:
        return cap, math.nan, ready_wait
    if (bound - n) * concurrency > Q.MAX_STEPS:
        return min(max(bound, n), cap), math.nan, ready_wait
    kk, inv_b = Q._start(a)
    c = n * concurrency
    if c < kk:
        kk, inv_b = 0, 1.0
    ready_inv = -1.0
    while True:
        if kk < ready_c < c:
            inv_b = plain_advance(inv_b, kk, ready_c, a)
            kk, ready_inv = ready_c, inv_b
        inv_b = plain_advance(inv_b, kk, c, a)
        kk = c
        if c == ready_c:
            ready_inv = inv_b
        prob = c / (inv_b * (c - a) + a)
        found = 0.0 if prob <= tail else ks / (c - a) * math.log(prob / tail)
        if found <= wait or n >= bound or n >= cap:
            break
        n += 1
        c += concurrency
    if ready_inv < 0.0 and ready_c > c and ready_c - c <= Q.MAX_STEPS and found >= ready_above:
        ready_inv = plain_advance(inv_b, c, ready_c, a)
    if ready_inv >= 0.0:
        prob = ready_c / (ready_inv * (ready_c - a) + a)
        ready_wait = Q.wait_quantile_from_c(prob, ready_c, a, s, k, q)
    return min(n, cap), found, ready_wait


def same(x: tuple[int, float, float], y: tuple[int, float, float]) -> bool:
    """Equal to the bit (NaN equal to NaN)."""
    return all(a == b or (a != a and b != b) for a, b in zip(x, y, strict=True))


@settings(max_examples=600, deadline=None)
@given(
    lam=st.floats(0.0, 400.0),
    s=st.floats(0.05, 60.0),
    cv=st.floats(0.0, 3.0),
    q=st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.999]),
    wait=st.floats(0.05, 60.0),
    conc=st.sampled_from([1, 2, 4, 8, 16, 64, 256]),
    ready=st.integers(0, 300),
    least=st.integers(0, 200),
    above=st.sampled_from([0.0, 0.2, 1.0, 10.0]),
)
@example(lam=5.0, s=4.0, cv=1.0, q=0.99, wait=5.0, conc=256, ready=3, least=0, above=0.0)
@example(lam=40.0, s=4.0, cv=1.0, q=0.99, wait=5.0, conc=16, ready=15, least=0, above=1.0)
def test_the_shortcuts_give_the_plain_walks_answer_to_the_bit(
    lam: float,
    s: float,
    cv: float,
    q: float,
    wait: float,
    conc: int,
    ready: int,
    least: int,
    above: float,
) -> None:
    args = (lam, s, cv, q, wait, conc, ready, least, 1_000_000, above)
    got, want = Q.size_for_wait(*args), plain_size_for_wait(*args)
    assert same(got, want), (got, want)


@settings(max_examples=400, deadline=None)
@given(
    a=st.floats(0.05, 3000.0),
    extra=st.floats(1.0, 400.0),
    tail=st.sampled_from([0.5, 0.1, 0.05, 0.01, 0.001]),
)
def test_no_wait_is_only_said_where_the_exact_erlang_c_is_under_half_the_tail(
    a: float, extra: float, tail: float
) -> None:
    c = math.ceil(a + extra)
    if Q._no_wait(c, a, math.log(a), tail):
        assert slow_erlang_c(c, a) <= 0.5 * tail * (1 + 1e-9)
        assert Q.erlang_c(c, a) <= tail


def test_no_wait_proves_the_easy_cases() -> None:
    # 20 Erlangs on 256 slots (one vLLM replica): nobody waits, and no walk is needed to say so.
    assert Q._no_wait(256, 20.0, math.log(20.0), 0.01)
    # Right at the load: every request may wait.
    assert not Q._no_wait(21, 20.0, math.log(20.0), 0.01)
