"""The HTTP edge shared by every provider client: one `httpx.AsyncClient` per profile, bearer
auth (a static token or a console login refreshed once on 401), and the translation of httpx
errors and HTTP statuses into the provider error tree (`raise ... from exc`).

Mapping: timeouts (each read, and the whole answer: a slow trickle too) and
connection/protocol/read errors, 5xx, bodies past `MAX_RESPONSE_BODY` (4 MiB, read as they
stream, counted after decompression: `autoscaler/httpbody.py`) and compressed bodies cut
short or undecodable -> TemporaryError; 429 -> RateLimitedError (Retry-After in seconds or as
an HTTP-date, at most `MAX_RETRY_AFTER`), and the profile's `RateGate` then refuses further
calls without sending them until that time has passed; 400/422 -> InvalidRequestError;
401/403 -> UnauthorizedError; 404 -> NotFoundError; 409 -> ConflictError. The provider's own
error body (`{code, message}` and common variants) is carried in the message and `.code`.
Credentials are `Secret`s: they appear only in the Authorization header, never in messages,
logs or reprs. Retrying is not done here (see `retry.py`); each call is one HTTP attempt
(plus at most one re-login on 401).
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import httpx
import structlog

from autoscaler.core import timefmt
from autoscaler.httpbody import ACCEPT_ENCODING, BodyError, BodyTooLarge, read_body
from autoscaler.providers.auth import Auth
from autoscaler.providers.auth import LoginToken as LoginToken  # re-exported (registry.py)
from autoscaler.providers.auth import StaticToken as StaticToken  # re-exported (registry.py)
from autoscaler.providers.base import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    TemporaryError,
    UnauthorizedError,
)

log = structlog.get_logger("autoscaler.providers")

OnRequest = Callable[[str, str, int | None, float], None]
"""`on_request(provider, operation, status_or_None, seconds)`: one call per HTTP attempt."""

CONFLICT_CODES = frozenset({"already_exists", "conflict", "duplicate_name"})
"""Error codes that mean "a duplicate" even when sent with 400 (NeevCloud's deploy has no 409)."""
MAX_MESSAGE = 300  # characters of a provider's error text kept in our messages
MAX_RESPONSE_BODY = 4 * 1024 * 1024  # bytes of one provider answer read at most
MAX_RETRY_AFTER = 600.0
"""Seconds a `Retry-After` may close the gate at most: a year-long (or endless) one from a
confused provider must not stop every policy on the profile until a restart."""
GATED = "rate_limited_locally"
"""`.code` of a RateLimitedError raised by the gate itself: nothing was sent."""


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP-date), at most
    `MAX_RETRY_AFTER`; None (the default wait) for what is neither, `inf` and `nan` included."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return min(MAX_RETRY_AFTER, max(0.0, seconds)) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return min(MAX_RETRY_AFTER, max(0.0, when.timestamp() - now()))


def error_details(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from a provider error body: `{code, message}` (NeevCloud
    ErrorResponse), `{error: {code, message}}`, `{detail: ...}`, or the raw text."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:MAX_MESSAGE]
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            body = inner
        code = body.get("code")
        message = body.get("message") or body.get("detail") or body.get("msg")
        if message is None and isinstance(inner, str):
            message = inner
        return (str(code) if code is not None else None), str(message or "")[:MAX_MESSAGE]
    return None, str(body)[:MAX_MESSAGE]


class RateGate:
    """Keeps calls away from a provider that answered 429 until its `Retry-After` has passed,
    across calls and evaluations (not only between retries inside one call). Scoped per
    profile (`"*"`), or per operation when the provider limits each operation on its own.
    Without a Retry-After, `DEFAULT_WAIT` seconds."""

    DEFAULT_WAIT = 1.0

    def __init__(self, clock: Callable[[], float], *, per_operation: bool = False) -> None:
        self.clock = clock
        self.per_operation = per_operation
        self._until: dict[str, float] = {}  # scope -> clock() time the next call may go

    def _scope(self, operation: str) -> str:
        return operation if self.per_operation else "*"

    def remaining(self, operation: str) -> float:
        until = self._until.get(self._scope(operation))
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            self._until.pop(self._scope(operation), None)
            return 0.0
        return left

    def close_for(self, operation: str, seconds: float | None) -> None:
        wait = self.DEFAULT_WAIT if seconds is None else max(0.0, seconds)
        scope = self._scope(operation)
        self._until[scope] = max(self._until.get(scope, 0.0), self.clock() + wait)

    def status(self, wall: Callable[[], float] = time.time) -> dict[str, str]:
        """{scope: ISO 8601 time the next call may go} for the scopes still closed."""
        now = self.clock()
        return {
            scope: timefmt.iso(wall() + until - now) or ""
            for scope, until in sorted(self._until.items())
            if until > now
        }


class ProviderHttp:
    """One profile's HTTP client: sends one request, maps errors, reports timings, keeps
    the rate-limit gate and the last error (for `/status` and `/readyz`)."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        timeout: float,
        auth: Auth | None,
        on_request: OnRequest | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        rate_limit_per_operation: bool = False,
        max_body: int = MAX_RESPONSE_BODY,
    ):
        self.provider = provider
        self.auth = auth
        self.on_request = on_request
        self.gate = RateGate(clock, per_operation=rate_limit_per_operation)
        self.max_body = max_body
        self.timeout = timeout  # for each read, and for the whole exchange
        self.last_error: dict[str, Any] | None = None  # {"error", "status", "t"}; None: fine
        self.failures = 0  # failed requests in a row
        self.auth_error: dict[str, Any] | None = None  # the last 401/403 while it lasts
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            # Many policies share one profile: keep every pooled connection alive rather
            # than reconnecting past httpx's default of 20 idle connections.
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
            transport=transport,
            headers={
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
                "User-Agent": "autoscaler",
            },
        )

    def __repr__(self) -> str:
        return f"ProviderHttp({self.provider!r}, {str(self.client.base_url)!r}, auth={self.auth!r})"

    async def aclose(self) -> None:
        await self.client.aclose()

    def _redact(self, text: str) -> str:
        if self.auth is None:
            return text
        for secret in self.auth.secrets():
            value = secret.reveal()
            if len(value) >= 4:
                text = text.replace(value, "***")
        return text

    async def request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """One authenticated request; a 401 triggers at most one credential refresh."""
        headers = await self.auth.headers(self) if self.auth else {}
        try:
            return await self.send(
                operation, method, path, json=json, params=params, headers=headers
            )
        except UnauthorizedError as exc:
            if exc.status_code != 401 or self.auth is None:
                raise
            if not await self.auth.refresh(self, headers):
                raise
        headers = await self.auth.headers(self)
        return await self.send(operation, method, path, json=json, params=params, headers=headers)

    async def send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send once; a 2xx response comes back, anything else raises a ProviderError.
        While the rate-limit gate is closed for `operation`, RateLimitedError at once (no
        network call), carrying the seconds left."""
        where = f"{self.provider}: {operation} ({method} {httpx.URL(url).path})"
        left = self.gate.remaining(operation)
        if left > 0:
            raise RateLimitedError(
                f"{where}: not sent; the provider asked us to wait (Retry-After), "
                f"next call in {left:.0f}s",
                retry_after=left,
                status_code=429,
                code=GATED,
            )
        try:
            response = await self._send(where, operation, method, url, json, params, headers)
        except ProviderError as exc:
            self._failed(exc)
            raise
        if self.auth_error is not None:
            log.info("provider_authorized", provider=self.provider, note="credentials accepted")
        self.last_error = None
        self.failures = 0
        self.auth_error = None
        return response

    async def _send(
        self,
        where: str,
        operation: str,
        method: str,
        url: str,
        json: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        started = time.perf_counter()
        status: int | None = None
        try:
            request = self.client.build_request(
                method, url, json=json, params=dict(params) if params else None, headers=headers
            )
            with anyio.fail_after(self.timeout):
                response = await self.client.send(request, stream=True)
                status = response.status_code
                try:
                    await self._read_capped(where, response)
                finally:
                    await response.aclose()
        except httpx.TimeoutException as exc:
            raise TemporaryError(f"{where}: timed out ({type(exc).__name__})") from exc
        except TimeoutError as exc:
            # Every read came within the timeout, but the answer as a whole did not (a slow
            # trickle): one call must not hold an evaluation without end.
            raise TemporaryError(
                f"{where}: timed out (the answer was not complete within {self.timeout:g} s)"
            ) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            # ConnectError, ReadError, WriteError, RemoteProtocolError, ...: no usable answer.
            raise TemporaryError(f"{where}: connection failed ({type(exc).__name__})") from exc
        finally:
            if self.on_request is not None:
                self.on_request(self.provider, operation, status, time.perf_counter() - started)
        if response.is_success:
            return response
        error = self._error(where, response)
        if isinstance(error, RateLimitedError):
            self.gate.close_for(operation, error.retry_after)
        raise error

    async def _read_capped(self, where: str, response: httpx.Response) -> None:
        """Read the body, at most `max_body` bytes counted after decompression
        (`httpbody.read_body`: a huge answer or a gzip bomb must not fill memory). Past the
        cap, cut short or undecodable: TemporaryError (the provider may answer sensibly next
        time)."""
        try:
            body = await read_body(response, self.max_body)
        except BodyTooLarge as exc:
            detail = (
                f"response body of {exc.size} bytes is larger than the {self.max_body}-byte "
                "cap; not read"
                if exc.size is not None
                else f"response body larger than the {self.max_body}-byte cap; stopped reading"
            )
            raise TemporaryError(f"{where}: {detail}", status_code=response.status_code) from exc
        except BodyError as exc:
            raise TemporaryError(
                f"{where}: the provider sent {exc}", status_code=response.status_code
            ) from exc
        # What .content/.text/.json() return from now on: httpx's own read() sets this field
        # the same way (read raw, the body is decompressed by us, not by httpx's decoders).
        response._content = body

    def _failed(self, exc: ProviderError) -> None:
        now = time.time()
        self.failures += 1
        self.last_error = {"error": exc.message, "status": exc.status_code, "t": timefmt.iso(now)}
        if isinstance(exc, UnauthorizedError):
            first = self.auth_error is None
            self.auth_error = {**self.last_error, "credential": self.credential_ref()}
            if first:
                log.error(
                    "provider_unauthorized",
                    provider=self.provider,
                    status=exc.status_code,
                    credential=self.auth_error["credential"],
                    error=exc.message,
                    note=(
                        f"the provider refused the credentials of profile {self.provider!r}: "
                        "check the token (or login) it names, its permissions on the "
                        "project, and that it has not expired; a rotated file or variable "
                        "is re-read on reload (SIGHUP)"
                    ),
                )

    def credential_ref(self) -> str | None:
        """Where the credential in use comes from (`env:NAME`, `file:PATH`), never its value."""
        if self.auth is None:
            return None
        refs = [s.origin for s in self.auth.secrets() if not s.origin.startswith("login:")]
        return ", ".join(refs) or None

    def status(self) -> dict[str, Any]:
        """For `/status`: the last error (cleared by the next answer), failures in a row,
        and when the next call may go while rate limited (ISO 8601)."""
        gate = self.gate.status()
        return {
            "last_error": self.last_error,
            "failures_in_a_row": self.failures,
            "next_call_at": max(gate.values()) if gate else None,
            "rate_limited_until": gate,
            "unauthorized": self.auth_error,
        }

    def _error(self, where: str, response: httpx.Response) -> ProviderError:
        status = response.status_code
        code, message = error_details(response)
        text = self._redact(f"{where}: HTTP {status}" + (f" {code}" if code else ""))
        if message:
            text += f": {self._redact(message)}"
        kw: dict[str, Any] = {"status_code": status, "code": code}
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return RateLimitedError(text, retry_after=retry_after, **kw)
        if status >= 500:
            return TemporaryError(text, **kw)
        if status in (401, 403):
            return UnauthorizedError(text, **kw)
        if status == 404:
            return NotFoundError(text, **kw)
        if status == 409 or (status == 400 and code in CONFLICT_CODES):
            return ConflictError(text, **kw)
        if status in (400, 422):
            return InvalidRequestError(text, **kw)
        if status == 408:
            return TemporaryError(text, **kw)
        return InvalidRequestError(text, **kw)
