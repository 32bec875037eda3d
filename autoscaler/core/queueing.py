"""Queueing math for the latency objective: M/G/c waits and the smallest server count.

A deployment of N replicas with `concurrency` slots each is one M/G/c queue with
c = N x concurrency servers, Poisson arrivals (rate `lam`, requests/s) and a general service
time (mean `s` seconds, coefficient of variation `cv`). With offered load a = lam x s:

- Erlang C, C(c, a): the probability that an arrival waits (exact, via the Erlang B recurrence
  B(k) = a B(k-1) / (k + a B(k-1)), C = c B / (c - a (1 - B))).
- The wait tail: in M/M/c, P(W > t) = C exp(-(c - a) t / s). For general service times the
  Allen-Cunneen / Kingman correction scales waits by k = (1 + cv^2) / 2 (Poisson arrivals have
  ca^2 = 1), so P(W > t) ~= C exp(-(c - a) t / (k s)) and the wait at quantile q is
  t_q = k s / (c - a) x ln(C / (1 - q)), or 0 when C <= 1 - q.

Speed: the recurrence starts at k0 = a - 6 sqrt(a) (from B(k0) ~= 1 - k0 / a) instead of 0.
Below a each step shrinks an error in B by about k / a, so the start costs a relative error of
about exp(-18) while a large deployment (a = 2,000) needs ~300 steps instead of 2,000. A search
walks c upwards one replica (`concurrency` servers) at a time, continuing the same recurrence,
and gives up walking after a bounded number of steps, answering with a count proven to meet
the objective (C <= 1). Pure floats: no state, no time.
"""

from __future__ import annotations

import math

# Never walk more than this many servers in one search; beyond it the bound below answers.
MAX_STEPS = 4096
# Start the Erlang B recurrence this many standard deviations (sqrt(a)) below a.
_START_SIGMAS = 6.0


def _start(a: float) -> tuple[int, float]:
    """(k0, B(k0, a)) where the recurrence begins."""
    if a <= 4 * _START_SIGMAS * _START_SIGMAS:
        return 0, 1.0
    k0 = int(a - _START_SIGMAS * math.sqrt(a))
    return k0, 1.0 - k0 / a


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of c servers offered a Erlangs (Erlang B)."""
    if a <= 0.0:
        return 0.0 if c > 0 else 1.0
    k, b = _start(a)
    if c < k:
        k, b = 0, 1.0
    while k < c:
        k += 1
        b = a * b / (k + a * b)
    return b


def erlang_c_from_b(c: int, a: float, b: float) -> float:
    """Erlang C from Erlang B of the same (c, a); 1.0 when the queue is unstable (a >= c)."""
    if a >= c:
        return 1.0
    return c * b / (c - a * (1.0 - b))


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits, c servers, a Erlangs (1.0 when a >= c)."""
    if a <= 0.0:
        return 0.0
    if a >= c:
        return 1.0
    return erlang_c_from_b(c, a, erlang_b(c, a))


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
    a = lam * s
    least = max(least, 0)
    if a <= 0.0:
        return min(least, cap)
    k = variability(cv)
    tail = 1.0 - q
    # Smallest stable count, then an upper bound from C <= 1:
    # k s / (c - a) x ln(1 / tail) <= wait  <=>  c >= a + k s ln(1 / tail) / wait.
    n = max(least, math.floor(a / concurrency) + 1)
    bound = math.ceil((a + k * s * math.log(1.0 / tail) / wait) / concurrency)
    if n >= cap:
        return cap
    if bound <= n:
        return n
    if (bound - n) * concurrency > MAX_STEPS:
        # Too far to walk: a tight objective on a slow service. The bound meets it (C <= 1).
        return min(bound, cap)
    kk, b = _start(a)
    c = n * concurrency
    if c < kk:
        kk, b = 0, 1.0
    while True:
        while kk < c:
            kk += 1
            b = a * b / (kk + a * b)
        prob = c * b / (c - a * (1.0 - b))
        if prob <= tail or k * s / (c - a) * math.log(prob / tail) <= wait:
            return min(n, cap)
        n += 1
        if n >= bound or n >= cap:
            return min(bound, cap)
        c += concurrency


def drain_time(backlog: float, servers: float, lam: float, s: float) -> float:
    """Seconds to clear `backlog` waiting requests with `servers` slots while `lam` more arrive
    (fluid: capacity servers / s requests/s); inf when the capacity does not exceed lam."""
    if backlog <= 0.0:
        return 0.0
    spare = servers / s - lam if s > 0 else math.inf
    if spare <= 0.0:
        return math.inf
    return backlog / spare


def replicas_for_drain(backlog: float, lam: float, s: float, wait: float, concurrency: int) -> int:
    """Replicas whose spare capacity clears `backlog` within `wait` seconds:
    c / s >= lam + backlog / wait."""
    if backlog <= 0.0:
        return 0
    servers = s * (lam + backlog / wait)
    return max(0, math.ceil(servers / concurrency - 1e-9))
