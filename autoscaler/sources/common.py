"""What every source shares: the bounded read, the parse threads, and the value rules (the
HTTP read is `httpget.py`).

Lives here: `bounded_read` (the timeout over the whole read, parsing included, the "only
SourceError escapes" guarantee and the last check that a value is load: finite and >= 0),
`off_loop` (long parsing in a worker thread, a few at a time), `finish` (the
`on_empty` rule), `load_value` (refuses negatives and infinities with a message saying why),
`resolve_secret`, and the error subclasses sources raise for "no data", "first counter
scrape" and "a value that cannot be load". No source-specific parsing lives here.

Negative values: everything the autoscaler reads is load (queue depths, in-flight counts,
rates, latencies, cache usage), and none of it can be below 0. A negative reading would be
clamped to 0 by the core, that is read as "idle", and idle scales down and deletes. So a
negative value is a failed read (`BadValueError`), like NaN and infinity; a failed read never
scales down. The table per source type is in README (Metric sources).
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from autoscaler.policy.model import SecretRef
from autoscaler.secrets import Secret, SecretError, resolve
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError
from autoscaler.textcut import one_line

MAX_DETAIL = 300  # characters of a server's own message kept in an error
MiB = 1024 * 1024
MAX_EXPOSITION_BODY = 8 * MiB  # a vLLM /metrics body is ~50 KB; one per replica URL
MAX_JSON_BODY = 1 * MiB  # a query answer or a stats document is a few KB
PARSE_INLINE = 64 * 1024  # bodies up to this parse on the event loop (~1 ms); larger in a thread
PARSE_THREADS = 2  # worker threads parsing at once (per event loop); the machine may have 2 cores
MAX_PARSE_THREADS = 4  # parse threads alive in the process, abandoned ones (timeouts) included

T = TypeVar("T")


class EmptyResultError(TemporarySourceError):
    """The read found no data (no matching series, no samples, NaN) and `on_empty` is `error`.

    Temporary: an idle or starting exporter often has no series yet (LiteLLM creates its
    counters on the first request), so the next read may well find data."""


class BadValueError(TemporarySourceError):
    """The source answered with a number that cannot be load: negative or not finite.

    Temporary: the next read may be fine. Never read as 0: 0 means idle, and idle deletes."""


class NeedsBaselineError(TemporarySourceError):
    """A rate needs two scrapes; the first one was recorded and the next read gives a value.

    `autoscaler probe` reacts to this by reading once more after a short pause."""


def redact_url(url: str) -> str:
    """`url` without a password in its user part (safe for messages and `describe`)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = f"{parts.username}:***@" if parts.username else ":***@"
        return urlunsplit(parts._replace(netloc=user + host))
    except ValueError:
        return "<invalid URL>"


def clip(text: str, limit: int = MAX_DETAIL) -> str:
    """`text` on one line, cut to `limit` (`textcut.one_line`)."""
    return one_line(str(text), limit)


async def bounded_read(
    name: str,
    timeout: float,
    read: Callable[[], Awaitable[float]],
    on_timeout: Callable[[], None] | None = None,
) -> float:
    """Run one read within `timeout` seconds; whatever goes wrong leaves as a SourceError.

    `on_timeout` lets a source with a long-lived connection mark it for replacement: a request
    cancelled mid-flight can leave a late answer on the wire."""
    try:
        with anyio.fail_after(timeout):
            value = await read()
    except SourceError:
        raise
    except TimeoutError:
        if on_timeout is not None:
            on_timeout()
        raise TemporarySourceError(
            name, f"no answer within {timeout:g}s (timeout over the whole read and parse)"
        ) from None
    except Exception as exc:  # the contract: a read raises SourceError and nothing else
        raise TemporarySourceError(
            name, f"unexpected {type(exc).__name__}: {clip(str(exc))}"
        ) from exc
    # The last guard, whatever the source: a value that leaves a source is load.
    return load_value(name, value, "value")


def load_value(name: str, value: float, what: str) -> float:
    """`value` if it can be load (finite, >= 0); else BadValueError saying why."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValueError(name, f"{what} {clip(repr(value), 40)} is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise BadValueError(name, f"{what} is too large for a float") from None
    if not math.isfinite(number):
        raise BadValueError(name, f"{what} is {number} (not a finite number)")
    if number < 0:
        raise BadValueError(
            name, f"{what} {number:g} is negative (load cannot be negative; read failed)"
        )
    return number + 0.0  # -0.0 -> 0.0


_PARSE_LIMITER: RunVar[anyio.CapacityLimiter] = RunVar("autoscaler_parse_limiter")


def _parse_limiter() -> anyio.CapacityLimiter:
    try:
        return _PARSE_LIMITER.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(PARSE_THREADS)
        _PARSE_LIMITER.set(limiter)
        return limiter


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim this way
        return None
    return trim


_MALLOC_TRIM = _find_malloc_trim()
TRIM_ABOVE = 1024 * 1024  # bytes of body after which the heap is trimmed


class _Job:
    """One parse handed to a worker thread, counted from hand-over until the thread ends
    (an abandoned thread still counts: it still uses a core)."""

    alive = 0  # parse threads running or about to, across all sources of the process
    lock = threading.Lock()

    def __init__(self, parse: Callable[[], Any], trim: bool):
        self.parse, self.trim = parse, trim
        self.started = self.dropped = False

    def run(self) -> Any:
        with _Job.lock:
            if self.dropped:  # the caller gave up before a thread was free
                return None
            self.started = True
        try:
            return self.parse()
        finally:
            # glibc keeps what a worker thread freed in that thread's arena; without the
            # trim a 7 MB exposition left ~80 MB resident for good.
            if self.trim and _MALLOC_TRIM is not None:
                _MALLOC_TRIM(0)
            with _Job.lock:
                _Job.alive -= 1

    def drop(self) -> None:
        with _Job.lock:
            if not self.started:
                self.dropped = True
                _Job.alive -= 1


async def off_loop(name: str, size: int, parse: Callable[[], T]) -> T:
    """`parse()`, in a worker thread when the body is large (`size` bytes) so the event loop
    keeps serving health checks and other reads.

    At most `PARSE_THREADS` parse at once per event loop; a timeout abandons the thread (it
    finishes on its own, bounded by the body cap). Abandoned threads still count: with
    `MAX_PARSE_THREADS` alive in the process, the read fails at once instead of starting
    another, so hostile answers cannot pile up parse threads."""
    if size <= PARSE_INLINE:
        return parse()
    with _Job.lock:
        if _Job.alive >= MAX_PARSE_THREADS:
            raise TemporarySourceError(
                name, f"{_Job.alive} large answers are still being parsed; read skipped"
            )
        _Job.alive += 1
    job = _Job(parse, trim=size > TRIM_ABOVE)
    try:
        result: T = await anyio.to_thread.run_sync(
            job.run, abandon_on_cancel=True, limiter=_parse_limiter()
        )
    except BaseException:
        job.drop()
        raise
    return result


def resolve_secret(name: str, ref: SecretRef | None, what: str) -> Secret | None:
    try:
        return resolve(ref)
    except SecretError as exc:
        raise PermanentSourceError(name, f"cannot resolve {what}: {exc}") from exc


def finish(
    name: str, value: float | None, on_empty: str, empty_reason: str, what: str = "value"
) -> float:
    """Apply the `on_empty` rule (None or NaN is "no data"), then `load_value`."""
    if value is None or math.isnan(value):
        if on_empty == "zero":
            return 0.0
        reason = empty_reason if value is None else f"{empty_reason} (value is NaN)"
        raise EmptyResultError(name, f"{reason}; set on_empty: zero to read this as 0")
    return load_value(name, value, what)
