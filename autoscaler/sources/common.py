"""What every source shares: the bounded read, HTTP error mapping, and the empty/NaN rule.

Lives here: `bounded_read` (the timeout and the "only SourceError escapes" guarantee),
`http_get` (httpx failures and status codes -> temporary/permanent errors), `finish` (the
`on_empty` rule and the finite check), `resolve_secret`, and the two error subclasses sources
raise for "no data" and "first counter scrape". No source-specific parsing lives here.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx

from autoscaler.policy.model import SecretRef
from autoscaler.secrets import Secret, SecretError, resolve
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError

MAX_DETAIL = 300  # characters of a server's own message kept in an error


class EmptyResultError(TemporarySourceError):
    """The read found no data (no matching series, no samples, NaN) and `on_empty` is `error`.

    Temporary: an idle or starting exporter often has no series yet (LiteLLM creates its
    counters on the first request), so the next read may well find data."""


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
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
            return await read()
    except SourceError:
        raise
    except TimeoutError:
        if on_timeout is not None:
            on_timeout()
        raise TemporarySourceError(name, f"no answer within {timeout:g}s (timeout)") from None
    except Exception as exc:  # the contract: a read raises SourceError and nothing else
        raise TemporarySourceError(
            name, f"unexpected {type(exc).__name__}: {clip(str(exc))}"
        ) from exc


def resolve_secret(name: str, ref: SecretRef | None, what: str) -> Secret | None:
    try:
        return resolve(ref)
    except SecretError as exc:
        raise PermanentSourceError(name, f"cannot resolve {what}: {exc}") from exc


def finish(name: str, value: float | None, on_empty: str, empty_reason: str) -> float:
    """Apply the `on_empty` rule (None or NaN is "no data") and refuse infinities."""
    if value is None or math.isnan(value):
        if on_empty == "zero":
            return 0.0
        reason = empty_reason if value is None else f"{empty_reason} (value is NaN)"
        raise EmptyResultError(name, f"{reason}; set on_empty: zero to read this as 0")
    if math.isinf(value):
        raise TemporarySourceError(name, f"value is {value} (not a finite number)")
    return float(value)


def _status_error(name: str, url: str, response: httpx.Response) -> SourceError:
    status = response.status_code
    reason = response.reason_phrase or ""
    detail = f"{url} answered HTTP {status} {reason}".rstrip()
    if status in (401, 403):
        return PermanentSourceError(name, f"{detail}: credentials refused or missing")
    if status == 404:
        return PermanentSourceError(name, f"{detail}: check the URL path")
    if status == 429 or status >= 500:
        return TemporarySourceError(name, detail)
    return PermanentSourceError(name, detail)


async def http_get(
    client: httpx.AsyncClient,
    name: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    accept_status: Callable[[int], bool] | None = None,
) -> httpx.Response:
    """GET `url` (body fully read) or raise the SourceError that describes the failure.

    `accept_status` lets a caller take error statuses whose bodies it understands (the
    Prometheus API explains its 4xx/5xx answers in JSON)."""
    shown = redact_url(url)

    def why(exc: Exception) -> str:  # httpx may quote the URL, password and all
        return clip(str(exc).replace(url, shown))

    try:
        response = await client.get(url, headers=headers, auth=auth, params=params)
    except httpx.ConnectTimeout:
        raise TemporarySourceError(name, f"connecting to {shown} timed out") from None
    except httpx.TimeoutException:
        raise TemporarySourceError(name, f"{shown} did not answer in time (read timeout)") from None
    except httpx.ConnectError as exc:
        raise TemporarySourceError(
            name, f"cannot connect to {shown}: {why(exc) or 'refused'}"
        ) from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise TemporarySourceError(
            name, f"connection to {shown} dropped while reading the answer ({why(exc)})"
        ) from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise PermanentSourceError(name, f"invalid URL {shown!r}: {why(exc)}") from None
    except httpx.HTTPError as exc:
        raise TemporarySourceError(
            name, f"request to {shown} failed: {type(exc).__name__}: {why(exc)}"
        ) from None
    if response.is_success or (accept_status is not None and accept_status(response.status_code)):
        return response
    raise _status_error(name, shown, response)


def decode_text(name: str, url: str, response: httpx.Response) -> str:
    try:
        return response.content.decode(response.encoding or "utf-8")
    except (UnicodeDecodeError, LookupError) as exc:
        raise PermanentSourceError(name, f"{url} sent text that is not valid: {exc}") from None
