"""The gateway's upstream client against raw loopback servers: keep-alive reuse, a kept-alive
connection the server closed (sent once more), bodies by length, chunked and until close, a
refused connection, and a body broken off midway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from autoscaler.gateway.client import (
    UpstreamBroken,
    UpstreamClient,
    UpstreamConnectError,
)
from tests.services import free_port

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        try:
            await handler(reader, writer, len(connections))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed a kept-alive connection
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


async def body_of(client: UpstreamClient, url: str) -> tuple[int, bytes]:
    response = await client.request("POST", url, [(b"x-a", b"1")], b"{}")
    data = b"".join([c async for c in response.chunks(10)])
    await response.aclose()
    return response.status_code, data


async def test_keep_alive_and_a_stale_connection_sent_once_more() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        for _ in range(2 if n == 1 else 10):
            request = await read_request(reader)
            assert b"x-a: 1" in request and request.endswith(b"{}")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        # connection 1 closes after two answers: the third request finds it stale

    async with raw_server(handler) as (url, connections):
        client = UpstreamClient()
        for _ in range(3):
            assert await body_of(client, url + "/v1/x") == (200, b"ok")
        await client.aclose()
    assert len(connections) == 2


async def test_chunked_and_until_close_bodies() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        if n == 1:
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            )
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close")
        await writer.drain()
        if n == 1:
            await read_request(reader)  # kept alive: wait for the next (never comes)

    async with raw_server(handler) as (url, _):
        client = UpstreamClient()
        assert await body_of(client, url) == (200, b"abcde")
        client._idle.clear()  # force a new connection for the next one
        assert await body_of(client, url) == (200, b"until-close")
        await client.aclose()


async def test_refused_connection_and_a_body_broken_off() -> None:
    client = UpstreamClient(connect_timeout=5)
    with pytest.raises(UpstreamConnectError):
        await client.request("POST", f"http://127.0.0.1:{free_port()}/v1", [], b"{}")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()

    async with raw_server(handler) as (url, _):
        response = await client.request("POST", url, [], b"{}")
        got = b""
        with pytest.raises(UpstreamBroken):
            async for chunk in response.chunks(10):
                got += chunk
        assert got == b"partial"
        await response.aclose()
    await client.aclose()
