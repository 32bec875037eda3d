"""The HTTP read every HTTP source shares: `http_get` streams a body up to a size cap (counted
after decompression) and maps httpx failures and status codes to temporary or permanent
`SourceError`s; `decode_text` decodes a body by its charset. No source-specific parsing."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

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


def _too_large(name: str, url: str, max_body: int, size: int | None = None) -> BodyTooLargeError:
    what = f"{size} bytes" if size is not None else f"more than {max_body} bytes"
    return BodyTooLargeError(
        name, f"{url} sent a body of {what}; the cap is max_body: {max_body} (raise it if needed)"
    )


ACCEPT_ENCODING = "gzip, deflate"  # what `_Inflater` reads; said explicitly, so a codec
# installed later (brotli, zstd: httpx would offer them) cannot widen what a server may send


class _Inflater:
    """Decompresses a body with a bound on its output: never more than `limit` bytes from
    any one chunk (httpx would inflate each 64 KB network chunk whole: ~64 MB for gzip).

    A gzip body may hold several members one after the other (RFC 1952); each is read, none
    dropped. `complete` says whether the last stream reached its end: a body cut short
    (a connection closed mid-answer, with no length to tell) does not."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        self.raw_deflate = False  # some servers send deflate without the zlib wrapper
        self.started = False
        self._unzip = self._new()

    def _new(self) -> Any:
        if self.encoding in ("gzip", "x-gzip"):
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if self.raw_deflate else zlib.MAX_WBITS)

    def _decompress(self, data: bytes, limit: int) -> bytes:
        try:
            out: bytes = self._unzip.decompress(data, limit)
        except zlib.error:
            if self.encoding != "deflate" or self.started or self.raw_deflate:
                raise
            self.raw_deflate = True
            self._unzip = self._new()
            out = self._unzip.decompress(data, limit)
        self.started = True
        return out

    def feed(self, data: bytes, limit: int) -> bytes:
        """At most `limit` bytes of output; more input than that would give is left unread."""
        out = self._decompress(data, limit)
        while self._unzip.eof and self._unzip.unused_data and len(out) < limit:
            if self.encoding == "deflate":
                raise zlib.error("data after the end of the deflate stream")
            rest = self._unzip.unused_data
            self._unzip = self._new()  # the next gzip member
            out += self._decompress(rest, limit - len(out))
        return out

    @property
    def complete(self) -> bool:
        return self._unzip.eof or not self.started  # no bytes at all: an empty body

    def finish(self) -> bytes:
        """What the decompressor still holds (little: its input was all consumed)."""
        rest: bytes = self._unzip.flush()
        return rest


async def _read_body(response: httpx.Response, name: str, shown: str, max_body: int) -> bytes:
    """The (decompressed) body, counted while it streams in; refused past `max_body`."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    declared = response.headers.get("content-length", "")
    if encoding in ("", "identity"):
        if declared.isdigit() and int(declared) > max_body:
            raise _too_large(name, shown, max_body, int(declared))
        inflater = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflater = _Inflater(encoding)
    else:
        raise PermanentSourceError(
            name, f"{shown} sent a body encoded as {encoding!r} (gzip and deflate are read)"
        )
    chunks: list[bytes] = []
    total = 0
    try:
        async for raw in response.aiter_raw():
            chunk = raw if inflater is None else inflater.feed(raw, max_body + 1 - total)
            total += len(chunk)
            if total > max_body:
                raise _too_large(name, shown, max_body)
            chunks.append(chunk)
        if inflater is not None:
            rest = inflater.finish()
            if total + len(rest) > max_body:
                raise _too_large(name, shown, max_body)
            chunks.append(rest)
            if not inflater.complete:
                raise TemporarySourceError(
                    name, f"{shown} sent a {encoding} body that ends before its end: cut short"
                )
    except zlib.error as exc:
        raise PermanentSourceError(
            name, f"{shown} sent a body that cannot be decompressed ({encoding}): {exc}"
        ) from None
    except BaseException:
        chunks.clear()  # a refused body is dropped at once; the caller keeps no reference
        raise
    return b"".join(chunks)


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
