"""The HTTP edge shared by every provider client: one `httpx.AsyncClient` per profile, bearer
auth (a static token or a console login refreshed once on 401), and the translation of httpx
errors and HTTP statuses into the provider error tree (`raise ... from exc`).

Mapping: timeouts and connection/protocol/read errors and 5xx -> TemporaryError; 429 ->
RateLimitedError (Retry-After in seconds or as an HTTP-date); 400/422 -> InvalidRequestError;
401/403 -> UnauthorizedError; 404 -> NotFoundError; 409 -> ConflictError. The provider's own
error body (`{code, message}` and common variants) is carried in the message and `.code`.
Credentials are `Secret`s: they appear only in the Authorization header, never in messages,
logs or reprs. Retrying is not done here (see `retry.py`); each call is one HTTP attempt
(plus at most one re-login on 401).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio
import httpx
import structlog

from autoscaler.providers.base import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    TemporaryError,
    UnauthorizedError,
)
from autoscaler.secrets import Secret

log = structlog.get_logger("autoscaler.providers")

OnRequest = Callable[[str, str, int | None, float], None]
"""`on_request(provider, operation, status_or_None, seconds)`: one call per HTTP attempt."""

CONFLICT_CODES = frozenset({"already_exists", "conflict", "duplicate_name"})
"""Error codes that mean "a duplicate" even when sent with 400 (NeevCloud's deploy has no 409)."""
MAX_MESSAGE = 300  # characters of a provider's error text kept in our messages


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now())


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


class Auth(Protocol):
    """Supplies the Authorization header; may refresh it once after a 401."""

    async def headers(self, http: ProviderHttp) -> dict[str, str]: ...

    async def refresh(self, http: ProviderHttp, stale: dict[str, str]) -> bool:
        """Get a new credential after `stale` was refused; False when that is impossible."""
        ...

    def secrets(self) -> list[Secret]: ...


class StaticToken:
    """A bearer token given directly (the NeevCloud `access_token`, a NetMind or Nebius key).
    With `reread` (resolving the profile's reference again), a refused token is read again
    once: a token rotated in its file or variable is picked up at the first 401."""

    def __init__(self, token: Secret, reread: Callable[[], Secret | None] | None = None):
        self._token = token
        self._reread = reread

    async def headers(self, http: ProviderHttp) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    async def refresh(self, http: ProviderHttp, stale: dict[str, str]) -> bool:
        if self._reread is None:
            return False
        try:
            fresh = self._reread()
        except Exception:  # unreadable now: the 401 stands, the reload path reports it
            return False
        if fresh is None or fresh == self._token:
            return False
        self._token = fresh
        log.info(
            "credentials_changed",
            changed=[f"providers.{http.provider}.token"],
            ref=fresh.origin,
            how="re-read after the provider refused the one in use",
        )
        return True

    def secrets(self) -> list[Secret]:
        return [self._token]

    def __repr__(self) -> str:
        return f"StaticToken({self._token!r})"


class LoginToken:
    """Console credentials exchanged at the tenant login (`POST {url}` with
    `{"username", "password"}`) for an `access_token`; logs in again when one is refused.
    Concurrent 401s share one re-login."""

    def __init__(self, url: str, username: Secret, password: Secret):
        self.url = url
        self._username = username
        self._password = password
        self._token: Secret | None = None
        self._lock = anyio.Lock()
        self.logins = 0  # how many times we logged in (tests check re-login happens once)

    async def _login(self, http: ProviderHttp) -> None:
        body = {"username": self._username.reveal(), "password": self._password.reveal()}
        response = await http.send("login", "POST", self.url, json=body)  # no bearer header
        try:
            data = response.json()
        except ValueError as exc:
            raise TemporaryError(f"{http.provider}: login answered with non-JSON") from exc
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise UnauthorizedError(f"{http.provider}: login response has no access_token")
        self._token = Secret(token, origin=f"login:{self.url}")
        self.logins += 1

    async def headers(self, http: ProviderHttp) -> dict[str, str]:
        if self._token is None:
            async with self._lock:
                if self._token is None:
                    await self._login(http)
        assert self._token is not None
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    async def refresh(self, http: ProviderHttp, stale: dict[str, str]) -> bool:
        async with self._lock:
            current = None if self._token is None else f"Bearer {self._token.reveal()}"
            if current == stale.get("Authorization"):
                await self._login(http)  # nobody refreshed it meanwhile
        return True

    def secrets(self) -> list[Secret]:
        return [s for s in (self._token, self._password, self._username) if s is not None]

    def credentials(self) -> dict[str, Secret]:
        """The console credentials (not the access token), to tell whether they changed."""
        return {"username": self._username, "password": self._password}

    def __repr__(self) -> str:
        return f"LoginToken(url={self.url!r}, logins={self.logins})"


class ProviderHttp:
    """One profile's HTTP client: sends one request, maps errors, reports timings."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        timeout: float,
        auth: Auth | None,
        on_request: OnRequest | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.provider = provider
        self.auth = auth
        self.on_request = on_request
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            # Many policies share one profile: keep every pooled connection alive rather
            # than reconnecting past httpx's default of 20 idle connections.
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "autoscaler"},
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
        """Send once; a 2xx response comes back, anything else raises a ProviderError."""
        started = time.perf_counter()
        status: int | None = None
        where = f"{self.provider}: {operation} ({method} {httpx.URL(url).path})"
        try:
            response = await self.client.request(
                method, url, json=json, params=dict(params) if params else None, headers=headers
            )
            status = response.status_code
        except httpx.TimeoutException as exc:
            raise TemporaryError(f"{where}: timed out ({type(exc).__name__})") from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            # ConnectError, ReadError, WriteError, RemoteProtocolError, ...: no usable answer.
            raise TemporaryError(f"{where}: connection failed ({type(exc).__name__})") from exc
        finally:
            if self.on_request is not None:
                self.on_request(self.provider, operation, status, time.perf_counter() - started)
        if response.is_success:
            return response
        raise self._error(where, response)

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
