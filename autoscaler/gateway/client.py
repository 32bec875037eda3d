"""The HTTP/1.1 client the gateway forwards with: keep-alive pools per origin, one write per
request, the response parsed by httptools (uvicorn's C parser), the body handed on chunk by
chunk as it arrives.

Why not httpx: benchmarks/bench_gateway.py measured it. httpcore polls every pooled
connection on each request and builds several objects per request; with 64 connections that
was about 1 ms of CPU per request, most of what one gateway process could do. This client does
only what forwarding needs, and httpx stays for everything else (sources, providers, tests).

What it does: `request(method, url, headers, body)` -> `UpstreamResponse` once the status line
and headers are in; `chunks()` yields the (de-chunked) body; `aclose()` returns a finished
connection to its pool or closes it. A request on a kept-alive connection that the server had
closed in the meantime (no byte of a response came back) is sent once more on a new one, the
way browsers and httpx do. Reading pauses while more than `PAUSE_AT` chunks wait (back
pressure on slow clients). Errors: `UpstreamConnectError` (no connection), `UpstreamBroken`
(the connection ended; `UpstreamMalformed`: the response was malformed), `UpstreamTimeout`,
`UpstreamAborted` (we closed it: the request's `gone` future says its client went away).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httptools

PAUSE_AT = 32  # chunks waiting before the socket is paused
IDLE_PER_ORIGIN = 256  # idle connections kept per origin


class UpstreamError(Exception):
    pass


class UpstreamConnectError(UpstreamError):
    pass


class UpstreamBroken(UpstreamError):
    pass


class UpstreamMalformed(UpstreamBroken):
    """The deployment answered, with something that is not an HTTP response."""


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamAborted(UpstreamError):
    """We closed the connection: the client the request was for went away."""


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.uses = 0
        self._begin()

    def _begin(self) -> None:
        loop = asyncio.get_running_loop()
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] = loop.create_future()
        self.chunks: deque[bytes] = deque()
        self.done = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.got_bytes = False
        self.paused = False
        self.until_close = False
        self.keep_alive = False

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamMalformed(f"malformed response: {exc}"))
            self.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        if self.until_close and self.head.done() and not self.done:
            self.done = True  # a body delimited by the end of the connection
            self._wake()
        elif not self.done:
            self._fail(UpstreamBroken("the connection closed before the response ended"))

    def pause_writing(self) -> None:  # requests are small; nothing to pause
        return None

    def resume_writing(self) -> None:
        return None

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        names = {n.lower() for n, _ in self.headers}
        self.until_close = b"content-length" not in names and b"transfer-encoding" not in names
        # Asked here: after the message is complete the parser answers False.
        self.keep_alive = self.parser.should_keep_alive() and not self.until_close
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        if len(self.chunks) >= PAUSE_AT and self.transport is not None and not self.paused:
            self.transport.pause_reading()
            self.paused = True
        self._wake()

    def on_message_complete(self) -> None:
        self.done = True
        self._wake()

    # -- ours ---------------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if not self.head.done():
            self.head.set_exception(exc)
            self.head.exception()  # retrieved: a request nobody awaits any more stays quiet
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def reusable(self) -> bool:
        return self.done and self.error is None and not self.closed and self.keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self, use: int, gone: asyncio.Future[Any]) -> None:
        """`gone` done: close now, unless the response of request `use` is in whole or the
        connection serves another one already; the deployment sees the connection close
        (vLLM aborts the request) and the reader gets UpstreamAborted."""
        if gone.cancelled() or use != self.uses or (self.done and self.error is None):
            return
        self.close()
        self._fail(UpstreamAborted("closed: the client went away"))


class UpstreamResponse:
    def __init__(self, client: UpstreamClient, origin: tuple[str, str, int], conn: _Conn):
        self._client = client
        self._origin = origin
        self._conn = conn
        self.status_code = conn.status
        self.headers = conn.headers

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    async def chunks(self, timeout: float) -> AsyncIterator[bytes]:
        """The body as it arrives; `timeout` bounds each wait for the next chunk."""
        conn = self._conn
        while True:
            if conn.chunks:
                chunk = conn.chunks.popleft()
                if conn.paused and len(conn.chunks) < PAUSE_AT // 2 and conn.transport is not None:
                    conn.transport.resume_reading()
                    conn.paused = False
                yield chunk
                continue
            if conn.done:
                return
            if conn.error is not None:
                raise conn.error
            conn.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(conn.waiter, timeout)
            except TimeoutError:
                conn.close()
                raise UpstreamTimeout(f"no response data within {timeout:g}s") from None
            finally:
                conn.waiter = None

    async def read(self, limit: int, timeout: float) -> bytes:
        data = bytearray()
        async for chunk in self.chunks(timeout):
            data += chunk
            if len(data) > limit:
                break
        return bytes(data)

    async def aclose(self) -> None:
        self._client._release(self._origin, self._conn)


class UpstreamClient:
    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._tls = tls
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def request(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        gone: asyncio.Future[Any] | None = None,
    ) -> UpstreamResponse:
        """`gone`, once done (the client went away), closes the connection at any point of
        the exchange: waiting for the head, or reading the body."""
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, host, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if parts.port is None else f"{host}:{port}"
        head = [f"{method} {target} HTTP/1.1\r\nHost: {host_header}\r\n".encode("latin-1")]
        for name, value in headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"Content-Length: %d\r\n\r\n" % len(body))
        message = b"".join(head) + body
        for attempt in (0, 1):
            conn, reused = await self._acquire(origin)
            conn._begin()
            conn.uses += 1
            assert conn.transport is not None
            conn.transport.write(message)
            if gone is not None:
                gone.add_done_callback(partial(conn.abort, conn.uses))
            try:
                await asyncio.wait_for(asyncio.shield(conn.head), self.read_timeout)
            except TimeoutError:
                conn.close()
                raise UpstreamTimeout(f"no response within {self.read_timeout:g}s") from None
            except UpstreamBroken:
                conn.close()
                if reused and not conn.got_bytes and attempt == 0:
                    continue  # the server had closed the idle connection: try a new one
                raise
            except BaseException:  # cancelled (the client went away): the answer is not ours
                conn.close()
                raise
            return UpstreamResponse(self, origin, conn)
        raise AssertionError("unreachable")

    async def _acquire(self, origin: tuple[str, str, int]) -> tuple[_Conn, bool]:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn, True
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    _Conn,
                    host,
                    port,
                    ssl=self._tls_context() if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                ),
                self.connect_timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise UpstreamConnectError(f"{type(exc).__name__}: {exc}") from None
        return protocol, False

    def _release(self, origin: tuple[str, str, int], conn: _Conn) -> None:
        if conn.reusable():
            idle = self._idle.setdefault(origin, [])
            if len(idle) < IDLE_PER_ORIGIN:
                idle.append(conn)
                return
        conn.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
