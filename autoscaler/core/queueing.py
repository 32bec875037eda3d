"""Queueing math for the latency objective: M/G/c waits and the smallest server count.

A deployment of N replicas with `concurrency` slots each is one M/G/c queue with
c = N x concurrency servers, Poisson arrivals (rate `lam`, requests/s) and a general service
time (mean `s` seconds, coefficient of variation `cv`). With offered load a = lam x s:

- Erlang C, C(c, a): the probability that an arrival waits, via the Erlang B recurrence
  B(k) = a B(k-1) / (k + a B(k-1)) (computed as 1 / B(k) = 1 + (k / a) / B(k-1)) and
  C = c B / (c - a (1 - B)).
- The wait tail: in M/M/c, P(W > t) = C exp(-(c - a) t / s). For general service times the
  Allen-Cunneen / Kingman correction scales waits by k = (1 + cv^2) / 2 (Poisson arrivals have
  ca^2 = 1), so P(W > t) ~= C exp(-(c - a) t / (k s)) and the wait at quantile q is
  t_q = k s / (c - a) x ln(C / (1 - q)), or 0 when C <= 1 - q.

Speed: the recurrence starts at k0 = a - 4 sqrt(a) instead of 0, from a second-order
estimate of B(k0) (see `_start`). Below a each step shrinks an error in B by about k / a, so
the start costs a relative error under 2e-6 (measured against the exact sum in
tests/core/test_core_queueing.py; a decision moves only when a wait lies that close to the
objective), while a large deployment (a = 2,000) needs ~200 steps instead of 2,000. A search
walks c upwards one replica (`concurrency` servers) at a time, continuing the same recurrence,
and gives up walking after a bounded number of steps, answering with a count proven to meet
the objective (C <= 1). A count far enough above a is first tried against a Poisson bound on
C (`_no_wait`, a few float operations): where it proves C below half the tail, the wait there
is 0 and the walk to it is skipped (the wait at a ready count well above the one sized, or a
replica of 256 slots offered 20 Erlangs). The walk itself takes four steps per turn of its
loop. Both give the plain walk's results to the bit (tests/core/test_core_queueing_shortcuts.py
compares them). Pure floats: no state, no time.
"""

from __future__ import annotations

import math
from typing import Final

# Never walk more than this many servers in one search; beyond it the bound below answers.
MAX_STEPS: Final = 4096
# Start the Erlang B recurrence this many standard deviations (sqrt(a)) below a.
_START_SIGMAS: Final = 4.0


def _start(a: float) -> tuple[int, float]:
    """(k0, 1 / B(k0, a)) where the recurrence begins: from the expansion of
    1 / B(k, a) = sum_j k! / ((k - j)! a^j) ~= 1 / (1 - r) - r^2 / (k (1 - r)^3), r = k / a < 1."""
    k0 = int(a - _START_SIGMAS * math.sqrt(a)) if a > _START_SIGMAS * _START_SIGMAS else 0
    if k0 < 1:
        return 0, 1.0
    r = k0 / a
    x = 1.0 - r
    return k0, 1.0 / x - r * r / (k0 * x * x * x)


def _advance(inv_b: float, k: int, c: int, a: float) -> float:
    """1 / B(c, a) from 1 / B(k, a), k <= c: the Erlang B recurrence in its reciprocal form
    1 / B(j) = 1 + (j / a) / B(j - 1), with j / a stepped as a float (no int in the loop).

    Four steps per turn of the loop: the same operations in the same order (the same result
    to the bit), with a quarter of the loop's own overhead."""
    steps = c - k
    if steps <= 0:
        return inv_b
    step = 1.0 / a
    x = k / a  # not k * step: 0 x inf is NaN when a is denormal
    for _ in range(steps >> 2):
        x1 = x + step
        x2 = x1 + step
        x3 = x2 + step
        x = x3 + step
        inv_b = 1.0 + x * (1.0 + x3 * (1.0 + x2 * (1.0 + x1 * inv_b)))
    for _ in range(steps & 3):
        x += step
        inv_b = 1.0 + x * inv_b
    return inv_b


def _no_wait(c: int, a: float, log_a: float, tail: float) -> bool:
    """Whether C(c, a) <= tail for sure, without the recurrence (then the wait at any
    quantile 1 - tail is 0). For X ~ Poisson(a), B(c, a) = P(X = c) / P(X <= c), and the
    median of X is below a + 1/3, so from c >= a + 1 on P(X <= c) >= 1/2 and
    C = c B / (c - a (1 - B)) <= 2 c P(X = c) / (c - a). Asked to be under half the tail:
    far beyond the recurrence's own error (under 2e-6 relative), so where this says yes the
    recurrence finds C <= tail too, and the answer is the same 0. Up to 1e12 servers: the
    logarithms cancel to an absolute error of about 3 c ln(c) x 1e-16 (under 0.01 there)."""
    if c < a + 1.0 or c > 1e12:
        return False
    log_p = c * log_a - a - math.lgamma(c + 1.0)
    return 2.0 * c * math.exp(log_p) / (c - a) <= 0.5 * tail


def _inverse_b(c: int, a: float) -> float:
    k, inv_b = _start(a)
    if c < k:
        k, inv_b = 0, 1.0
    return _advance(inv_b, k, c, a)


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of c servers offered a Erlangs (Erlang B)."""
    if a <= 0.0:
        return 0.0 if c > 0 else 1.0
    return 1.0 / _inverse_b(c, a)


def _erlang_c(c: int, a: float, inv_b: float) -> float:
    """Erlang C from 1 / B(c, a), for a < c: c B / (c - a (1 - B)) = c / (r (c - a) + a)."""
    return c / (inv_b * (c - a) + a)


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits, c servers, a Erlangs (1.0 when a >= c)."""
    if a <= 0.0:
        return 0.0
    if a >= c:
        return 1.0
    return _erlang_c(c, a, _inverse_b(c, a))


def wait_quantile_from_c(prob_wait: float, c: int, a: float, s: float, k: float, q: float) -> float:
    """Seconds within which a fraction q of arrivals starts, given C = prob_wait."""
    if a >= c:
        return math.inf
    tail = 1.0 - q
    if prob_wait <= tail:
        return 0.0
    return k * s / (c - a) * math.log(prob_wait / tail)


def variability(cv: float) -> float:
    """The Allen-Cunneen factor (ca^2 + cs^2) / 2 for Poisson arrivals."""
    return (1.0 + cv * cv) / 2.0


def wait_quantile(c: int, lam: float, s: float, cv: float, q: float) -> float:
    """Predicted wait for a slot at quantile q with c servers (inf when unstable)."""
    a = lam * s
    if a <= 0.0:
        return 0.0
    if c <= 0 or a >= c:
        return math.inf
    return wait_quantile_from_c(erlang_c(c, a), c, a, s, variability(cv), q)


def replicas_for_wait(
    lam: float,
    s: float,
    cv: float,
    q: float,
    wait: float,
    concurrency: int,
    least: int = 0,
    cap: int = 1_000_000,
) -> int:
    """The smallest replica count N >= `least` with wait_quantile(N x concurrency) <= `wait`.

    `least` lets the caller skip counts it already knows are too few (it must be a lower
    bound of the answer or below it). Returns `cap` when even that is not enough.
    """
    return size_for_wait(lam, s, cv, q, wait, concurrency, 0, least, cap)[0]


def size_for_wait(
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
    """(N, the wait at N, the wait at `ready` replicas): `replicas_for_wait` plus the model's
    prediction for the replicas at hand, from one pass of the Erlang B recurrence. A wait is
    NaN where the search answered with its bound instead of walking there, and the wait at
    `ready` is NaN too when the caller only needs it from `ready_above` on and it is below
    (more replicas than N wait less than N do).

    Long because the walk is one loop shared by the search and the ready count (about 75
    lines, over the ~60-line rule): the recurrence is continued in the same segments as
    always (a walk cut elsewhere rounds differently), and a count `_no_wait` proves without
    a wait skips its walk, which the code after the loop must know to finish the walk to
    `ready` the same way."""
    a = lam * s
    least = least if least > 0 else 0
    if a <= 0.0:
        return (cap if cap < least else least), 0.0, 0.0
    if not math.isfinite(a):
        return cap, math.inf, math.inf
    k = (1.0 + cv * cv) / 2.0  # variability(cv), inline: this runs every decision
    tail = 1.0 - q
    ks = k * s
    if not ks < math.inf:  # a variability so wild no count is proven to meet the objective
        return cap, math.inf, math.inf
    n = math.floor(a / concurrency) + 1
    if least > n:
        n = least
    # An upper bound from C <= 1: k s / (c - a) x ln(1 / tail) <= wait.
    bound_f = (a + ks * math.log(1.0 / tail) / wait) / concurrency
    bound = math.ceil(bound_f) if bound_f < cap else cap  # cap: also an overflow to inf
    ready_c = ready * concurrency
    ready_wait = math.inf if ready_c <= a else math.nan
    if n >= cap:
        return cap, math.nan, ready_wait
    if (bound - n) * concurrency > MAX_STEPS:
        # Too far to walk (a tight objective on a slow service): the bound meets it (C <= 1).
        return min(max(bound, n), cap), math.nan, ready_wait
    kk, inv_b = _start(a)
    c = n * concurrency
    if c < kk:
        kk, inv_b = 0, 1.0
    ready_inv = -1.0
    # Past a + 2 sqrt(a) a count may be proven to keep every request from waiting at the
    # quantile (`_no_wait`, a few float operations instead of a walk there).
    clear = a + 2.0 * math.sqrt(a)
    log_a = math.log(a)
    while True:
        if kk < ready_c < c:
            inv_b = _advance(inv_b, kk, ready_c, a)
            kk, ready_inv = ready_c, inv_b
        if c >= clear and _no_wait(c, a, log_a, tail):
            found = 0.0  # what the walk would find; it is skipped (kk < c)
            break
        inv_b = _advance(inv_b, kk, c, a)
        kk = c
        if c == ready_c:
            ready_inv = inv_b
        prob = c / (inv_b * (c - a) + a)  # _erlang_c, inline
        found = 0.0 if prob <= tail else ks / (c - a) * math.log(prob / tail)
        if found <= wait or n >= bound or n >= cap:  # the bound meets it (up to rounding)
            break
        n += 1
        c += concurrency
    if ready_inv < 0.0:
        if ready_c == c:  # its walk was skipped: no wait there
            ready_wait = 0.0
        elif ready_c > c and ready_c - c <= MAX_STEPS and found >= ready_above:
            if ready_c >= clear and _no_wait(ready_c, a, log_a, tail):
                ready_wait = 0.0
            else:
                inv_b = _advance(inv_b, kk, c, a)  # a skipped walk to c, in its own segment
                ready_inv = _advance(inv_b, c, ready_c, a)
    if ready_inv >= 0.0:
        ready_wait = wait_quantile_from_c(_erlang_c(ready_c, a, ready_inv), ready_c, a, s, k, q)
    return (cap if cap < n else n), found, ready_wait


def drain_time(backlog: float, servers: float, lam: float, s: float) -> float:
    """Seconds to clear `backlog` waiting requests with `servers` slots while `lam` more arrive
    (fluid: capacity servers / s requests/s); inf when the capacity does not exceed lam."""
    if backlog <= 0.0:
        return 0.0
    spare = servers / s - lam if s > 0 else math.inf
    if spare <= 0.0:
        return math.inf
    return backlog / spare


def replicas_for_drain(
    backlog: float, lam: float, s: float, wait: float, concurrency: int, cap: int = 1_000_000
) -> int:
    """Replicas that start `backlog` queued requests within `wait` seconds while `lam` more
    arrive: the a = lam x s slots the arrivals need, plus backlog x s / (s + wait) more.

    A spare slot takes a queued request at once and holds it for s, so within `wait` it
    starts 1 + wait / s of them (fluid): backlog / (1 + wait / s) spare slots clear the queue.
    Short requests (s << wait) need backlog x s / wait spare slots (throughput); long ones
    (s >> wait) about one slot per queued request, not backlog x s / wait."""
    if backlog <= 0.0:
        return 0
    servers = s * lam + backlog * s / (s + wait)
    if not servers < cap * concurrency:  # also inf and NaN (readings near the float limit)
        return cap
    return max(0, math.ceil(servers / concurrency - 1e-9))
