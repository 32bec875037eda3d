"""Retrying provider calls: the backoff policy (a small value object) and the retry loop.

Only `TemporaryError` and `RateLimitedError` are retried; every other `ProviderError` is
permanent and goes straight to the caller. Each call has a retry budget (`max_retries`) and an
overall deadline; a `Retry-After` longer than what is left of the deadline ends the call at
once with the rate-limit error (the caller's next cycle is a better place to wait).
Sleeping and the clock are injectable so tests never wait for real.
No HTTP lives here: see `autoscaler.providers.http`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from autoscaler.providers.base import ProviderError, RateLimitedError, TemporaryError

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
    Jitter"): attempt k waits uniform(0, min(cap, base * factor**k)) seconds."""

    base: float = 0.5  # seconds; the first retry waits up to this long
    factor: float = 2.0
    cap: float = 20.0  # seconds; no single wait is longer (unless Retry-After asks for it)

    def ceiling(self, attempt: int) -> float:
        """The largest wait before retry number `attempt` (0-based)."""
        return float(min(self.cap, self.base * self.factor ** max(0, attempt)))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    backoff: Backoff = Backoff()
    max_retries: int = 4  # retries after the first attempt
    deadline: float = 60.0  # seconds for the whole call, retries and waits included


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, TemporaryError | RateLimitedError)


async def call_with_retries(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = anyio.sleep,
    clock: Clock = time.monotonic,
    rng: random.Random | None = None,
    before_retry: Callable[[ProviderError], Awaitable[T | None]] | None = None,
) -> T:
    """Run `operation`, retrying temporary and rate-limited errors.

    `before_retry(error)` runs before each retry; when it returns a value, that value is the
    result and no retry is made (create uses it to look the name up after a lost response).
    """
    rng = rng or random.Random()
    started = clock()
    attempt = 0
    while True:
        try:
            return await operation()
        except ProviderError as exc:
            if not is_retryable(exc) or attempt >= policy.max_retries:
                raise
            wait = policy.backoff.delay(attempt, rng)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                wait = max(wait, float(retry_after))
            remaining = policy.deadline - (clock() - started)
            if wait > remaining:
                raise
            await sleep(wait)
            attempt += 1
            if before_retry is not None:
                resolved = await before_retry(exc)
                if resolved is not None:
                    return resolved
