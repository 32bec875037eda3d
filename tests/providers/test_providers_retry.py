"""The backoff value object, Retry-After parsing and the retry loop (budget, deadline)."""

from __future__ import annotations

import email.utils
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.fakecloud import VirtualClock
from autoscaler.providers.base import (
    InvalidRequestError,
    RateLimitedError,
    TemporaryError,
    UnauthorizedError,
)
from autoscaler.providers.http import parse_retry_after
from autoscaler.providers.retry import Backoff, RetryPolicy, call_with_retries
from tests.providers.helpers import MaxJitter, Sleeps, run


@given(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_full_jitter_stays_within_the_exponential_ceiling(attempt: int, seed: int) -> None:
    backoff = Backoff(base=0.5, factor=2.0, cap=20.0)
    delay = backoff.delay(attempt, random.Random(seed))
    assert 0.0 <= delay <= min(20.0, 0.5 * 2.0**attempt)


def test_ceiling_grows_exponentially_up_to_the_cap() -> None:
    backoff = Backoff(base=1.0, factor=2.0, cap=5.0)
    assert [backoff.ceiling(k) for k in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_retry_after_as_seconds_and_as_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=lambda: now) == pytest.approx(30.0)
    assert parse_retry_after("not a date") is None
    assert parse_retry_after(None) is None


class Flaky:
    """Fails with the given errors in turn, then succeeds."""

    def __init__(self, *errors: Exception):
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_temporary_errors_are_retried_until_success() -> None:
    clock = VirtualClock()
    sleeps = Sleeps(clock)
    op = Flaky(TemporaryError("503"), TemporaryError("reset"))
    policy = RetryPolicy(backoff=Backoff(base=1.0, factor=2.0, cap=10.0), max_retries=4)
    result = run(
        call_with_retries(op, policy, sleep=sleeps, clock=clock.monotonic, rng=MaxJitter())
    )
    assert result == "ok"
    assert op.calls == 3
    assert sleeps.waits == [1.0, 2.0]


def test_retry_budget_is_respected() -> None:
    clock = VirtualClock()
    op = Flaky(*[TemporaryError("503") for _ in range(10)])
    policy = RetryPolicy(max_retries=2)
    with pytest.raises(TemporaryError):
        run(call_with_retries(op, policy, sleep=Sleeps(clock), clock=clock.monotonic))
    assert op.calls == 3


@pytest.mark.parametrize("error", [InvalidRequestError("bad"), UnauthorizedError("no")])
def test_permanent_errors_are_not_retried(error: Exception) -> None:
    clock = VirtualClock()
    op = Flaky(error)
    with pytest.raises(type(error)):
        run(call_with_retries(op, RetryPolicy(), sleep=Sleeps(clock), clock=clock.monotonic))
    assert op.calls == 1


def test_retry_after_is_honoured_as_a_minimum_wait() -> None:
    clock = VirtualClock()
    sleeps = Sleeps(clock)
    op = Flaky(RateLimitedError("429", retry_after=7.0))
    policy = RetryPolicy(backoff=Backoff(base=0.1), max_retries=3)
    assert run(call_with_retries(op, policy, sleep=sleeps, clock=clock.monotonic)) == "ok"
    assert sleeps.waits == [7.0]


def test_a_retry_after_beyond_the_deadline_ends_the_call() -> None:
    clock = VirtualClock()
    sleeps = Sleeps(clock)
    op = Flaky(RateLimitedError("429", retry_after=120.0))
    policy = RetryPolicy(max_retries=3, deadline=60.0)
    with pytest.raises(RateLimitedError) as info:
        run(call_with_retries(op, policy, sleep=sleeps, clock=clock.monotonic))
    assert info.value.retry_after == 120.0
    assert sleeps.waits == []
    assert op.calls == 1


def test_overall_deadline_bounds_the_retries() -> None:
    clock = VirtualClock()
    sleeps = Sleeps(clock)
    op = Flaky(*[TemporaryError("503") for _ in range(50)])
    policy = RetryPolicy(
        backoff=Backoff(base=4.0, factor=1.0, cap=4.0), max_retries=50, deadline=10
    )
    with pytest.raises(TemporaryError):
        run(call_with_retries(op, policy, sleep=sleeps, clock=clock.monotonic, rng=MaxJitter()))
    assert sum(sleeps.waits) <= 10.0
    assert op.calls == 3  # waits of 4 + 4; a third would pass the deadline


def test_before_retry_can_resolve_the_call_without_another_attempt() -> None:
    clock = VirtualClock()
    op = Flaky(TemporaryError("lost response"), TemporaryError("never reached"))

    async def look_up(error: Exception) -> str:
        return "found"

    result = run(
        call_with_retries(
            op, RetryPolicy(), sleep=Sleeps(clock), clock=clock.monotonic, before_retry=look_up
        )
    )
    assert result == "found"
    assert op.calls == 1
