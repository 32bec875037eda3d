"""How a provider client authenticates: `Auth` (the Authorization header, refreshed once after a
401), `StaticToken` (a bearer token, read again when refused) and `LoginToken` (console
credentials exchanged at the tenant login, again when the token is refused). `http.py` sends
the requests and calls these; they are re-exported there."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import structlog

from autoscaler.providers.base import TemporaryError, UnauthorizedError
from autoscaler.secrets import Secret

if TYPE_CHECKING:
    import httpx


class AuthHttp(Protocol):
    """What an `Auth` needs of the HTTP edge (`http.ProviderHttp`, which imports this module):
    the provider's name for messages, and one request sent without auth headers (a login)."""

    provider: str

    async def send(
        self, operation: str, method: str, url: str, *, json: Any = None
    ) -> httpx.Response: ...


log = structlog.get_logger("autoscaler.providers")


class Auth(Protocol):
    """Supplies the Authorization header; may refresh it once after a 401."""

    async def headers(self, http: AuthHttp) -> dict[str, str]: ...

    async def refresh(self, http: AuthHttp, stale: dict[str, str]) -> bool:
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

    async def headers(self, http: AuthHttp) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    async def refresh(self, http: AuthHttp, stale: dict[str, str]) -> bool:
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

    async def _login(self, http: AuthHttp) -> None:
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

    async def headers(self, http: AuthHttp) -> dict[str, str]:
        if self._token is None:
            async with self._lock:
                if self._token is None:
                    await self._login(http)
        assert self._token is not None
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    async def refresh(self, http: AuthHttp, stale: dict[str, str]) -> bool:
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
