"""The HTTP read every HTTP source shares: `http_get` streams a body up to a size cap (counted
after decompression, by `autoscaler/httpbody.py`) and maps httpx failures, body refusals and
status codes to temporary or permanent `SourceError`s; `decode_text` decodes a body by its
charset. No source-specific parsing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from autoscaler.httpbody import ACCEPT_ENCODING, BodyCutShort, BodyError, BodyTooLarge, read_body
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError
from autoscaler.sources.common import clip, redact_url


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A finished HTTP answer: status, headers and the whole body (at most the cap)."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    content: bytes
    encoding: str | None

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class BodyTooLargeError(PermanentSourceError):
    """The answer's body is larger than the source's `max_body`."""


def _status_error(name: str, url: str, response: HttpAnswer) -> SourceError:
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


async def _read_body(response: httpx.Response, name: str, shown: str, max_body: int) -> bytes:
    """The (decompressed) body, counted while it streams in (`httpbody.read_body`), or the
    SourceError that says why not: too large or undecodable is permanent, cut short temporary."""
    try:
        return await read_body(response, max_body)
    except BodyTooLarge as exc:
        raise BodyTooLargeError(
            name, f"{shown} sent {exc}; the cap is max_body: {max_body} (raise it if needed)"
        ) from None
    except BodyCutShort as exc:
        raise TemporarySourceError(name, f"{shown} sent {exc}") from None
    except BodyError as exc:
        raise PermanentSourceError(name, f"{shown} sent {exc}") from None


async def http_get(
    client: httpx.AsyncClient,
    name: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    accept_status: Callable[[int], bool] | None = None,
    *,
    max_body: int,
) -> HttpAnswer:
    """GET `url` and read its body (at most `max_body` bytes, counted as it streams, after
    decompression), or raise the SourceError that describes the failure.

    `accept_status` lets a caller take error statuses whose bodies it understands (the
    Prometheus API explains its 4xx/5xx answers in JSON).

    Long because the except ladder is the one table from httpx's failures to the error a source
    reports, one clause per failure, in the order httpx's exception hierarchy requires.
    """
    shown = redact_url(url)

    def why(exc: Exception) -> str:  # httpx may quote the URL, password and all
        return clip(str(exc).replace(url, shown))

    try:
        request = client.build_request(
            "GET",
            url,
            headers={"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})},
            params=params,
        )
        response = await client.send(request, auth=auth, stream=True)
        try:
            answer = HttpAnswer(
                response.status_code,
                response.reason_phrase,
                response.headers,
                await _read_body(response, name, shown, max_body),
                response.charset_encoding,
            )
        finally:
            await response.aclose()
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
    except httpx.DecodingError as exc:
        raise PermanentSourceError(
            name, f"{shown} sent a body that cannot be decompressed: {why(exc)}"
        ) from None
    except httpx.HTTPError as exc:
        raise TemporarySourceError(
            name, f"request to {shown} failed: {type(exc).__name__}: {why(exc)}"
        ) from None
    if answer.is_success or (accept_status is not None and accept_status(answer.status_code)):
        return answer
    raise _status_error(name, shown, answer)


def decode_text(name: str, url: str, response: HttpAnswer) -> str:
    try:
        return response.content.decode(response.encoding or "utf-8")
    except (UnicodeDecodeError, LookupError) as exc:
        raise PermanentSourceError(name, f"{url} sent text that is not valid: {exc}") from None
