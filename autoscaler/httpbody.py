"""Reading an HTTP answer's body within a size cap, for every HTTP client of the package (the
metric sources' `sources/httpget.py`, the provider clients' `providers/http.py`).

The body is read raw and decompressed here, `Inflater` bounding the output of each chunk, so
the cap holds after decompression: httpx would inflate each 64 KB network chunk whole before
a cap could be checked (a gzip bomb: ~64 MB at once). What can go wrong with a body is a
`BodyError`; each client words it in its own error types."""

from __future__ import annotations

import zlib
from typing import Any

import httpx

ACCEPT_ENCODING = "gzip, deflate"  # what `Inflater` reads; said explicitly, so a codec
# installed later (brotli, zstd: httpx would offer them) cannot widen what a server may send
ENCODINGS = ("gzip", "x-gzip", "deflate")


class BodyError(Exception):
    """The body cannot be used. `str()` says what the server sent: "a body ..."."""


class BodyCutShort(BodyError):
    """A compressed body whose stream ends before its end: the answer was cut short."""


class BodyTooLarge(BodyError):
    """Over the cap: `size` is the declared length, None when found while streaming."""

    def __init__(self, cap: int, size: int | None = None):
        self.cap, self.size = cap, size
        shown = f"{size} bytes" if size is not None else f"more than {cap} bytes"
        super().__init__(f"a body of {shown}")


class Inflater:
    """Decompresses a body with a bound on its output: never more than `limit` bytes from
    any one chunk.

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
        """At most `limit` (>= 1) bytes of output; more input than that would give is left
        unread."""
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


async def read_body(response: httpx.Response, max_body: int) -> bytes:
    """The (decompressed) body of a response sent with `stream=True`, counted while it
    streams in: BodyTooLarge past `max_body`, BodyCutShort for a compressed stream that does
    not end, BodyError for an encoding other than gzip / deflate or a body that does not
    decompress. httpx's own transport errors pass through."""
    if response.is_stream_consumed:
        # The transport handed over a body it had read already (an in-process or mock one:
        # httpx reads, and decodes, a `content=` body at once): nothing is left to bound.
        if len(response.content) > max_body:
            raise BodyTooLarge(max_body, len(response.content))
        return response.content
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    declared = response.headers.get("content-length", "")
    if encoding in ("", "identity"):
        if declared.isdigit() and int(declared) > max_body:
            raise BodyTooLarge(max_body, int(declared))
        inflater = None
    elif encoding in ENCODINGS:
        inflater = Inflater(encoding)
    else:
        raise BodyError(f"a body encoded as {encoding!r} (gzip and deflate are read)")
    chunks: list[bytes] = []
    total = 0
    try:
        async for raw in response.aiter_raw():
            chunk = raw if inflater is None else inflater.feed(raw, max_body + 1 - total)
            total += len(chunk)
            if total > max_body:
                raise BodyTooLarge(max_body)
            chunks.append(chunk)
        if inflater is not None:
            rest = inflater.finish()
            if total + len(rest) > max_body:
                raise BodyTooLarge(max_body)
            chunks.append(rest)
            if not inflater.complete:
                raise BodyCutShort(f"a {encoding} body that ends before its end: cut short")
    except BaseException as exc:
        chunks.clear()  # a refused body is dropped at once; the caller keeps no reference
        if isinstance(exc, zlib.error):
            raise BodyError(f"a body that cannot be decompressed ({encoding}): {exc}") from None
        raise
    return b"".join(chunks)
