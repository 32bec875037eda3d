"""Raw HTTP/1.1 for tests of what a server does with requests no client library would send:
write bytes on a new connection, read what comes back until the server closes it, and read
the first response's status and JSON body, or every response in order (pipelining)."""

from __future__ import annotations

import json
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import anyio


async def exchange(host: str, port: int, data: bytes, more: bytes = b"", times: int = 0) -> bytes:
    """Send `data` (then `more` up to `times` times, while the server takes it) on a new
    connection and read until the server closes it (or resets it: what came before counts)."""
    stream = await anyio.connect_tcp(host, port)
    answer = b""
    with anyio.fail_after(60):
        try:
            await stream.send(data)
            for _ in range(times):
                await stream.send(more)
        except (anyio.BrokenResourceError, OSError):
            pass
        try:
            while True:
                answer += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass
    await stream.aclose()
    return answer


def json_response(answer: bytes) -> tuple[int, Any]:
    """(status, JSON body) of the first response in `answer`, which must say it is JSON."""
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), answer[:300]
    lines = head.lower().split(b"\r\n")
    [length] = [int(line[15:]) for line in lines if line.startswith(b"content-length:")]
    return int(head.split(b" ", 2)[1]), json.loads(rest[:length])


async def converse(
    host: str, port: int, data: bytes, more: bytes = b"", stop: anyio.Event | None = None
) -> bytes:
    """Send `data` on a new connection, then `more` again and again until `stop` is set or
    the server stops taking it, while reading what comes back until the server closes."""
    stream = await anyio.connect_tcp(host, port)
    answer = bytearray()

    async def send() -> None:
        try:
            await stream.send(data)
            while more and not (stop is not None and stop.is_set()):
                await stream.send(more)
        except (anyio.BrokenResourceError, OSError):
            pass

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            try:
                while True:
                    answer += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass
            tg.cancel_scope.cancel()
    await stream.aclose()
    return bytes(answer)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[bytes, bytes]  # names lowercased
    body: bytes


def responses(answer: bytes, bodiless: Container[int] = ()) -> list[Response]:
    """The whole responses in `answer`, in order (bodies by Content-Length or chunked); the
    indexes in `bodiless` answer HEAD requests (no body whatever the headers say). What
    follows the last whole response is left off."""
    found: list[Response] = []
    rest = answer
    while b"\r\n\r\n" in rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        status_line, *lines = head.split(b"\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if len(found) in bodiless:
            body = b""
        elif headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line, 16)
                body, rest = body + rest[:size], rest[size + 2 :]
                if size == 0:
                    break
        else:
            length = int(headers.get(b"content-length", b"0"))
            if len(rest) < length:
                break
            body, rest = rest[:length], rest[length:]
        found.append(Response(int(status_line.split(b" ", 2)[1]), headers, body))
    return found


def heads_and_gets(paths: tuple[bytes, ...], extra: bytes = b"") -> bytes:
    """HEAD then GET of each path, pipelined, each with the header lines `extra`."""
    return b"".join(
        method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"
        for path in paths
        for method in (b"HEAD", b"GET")
    )


def assert_heads_match_gets(
    found: list[Response], paths: tuple[bytes, ...], varying: tuple[bytes, ...] = ()
) -> None:
    """The answers to `heads_and_gets(paths)`: each HEAD has its GET's content type and, for
    a path not in `varying` (a body that may change between two reads), its length."""
    for path, head, get in zip(paths, found[0::2], found[1::2], strict=False):
        assert head.headers[b"content-type"] == get.headers[b"content-type"], path
        assert int(head.headers[b"content-length"]) > 0, path
        if path not in varying:
            assert head.headers[b"content-length"] == str(len(get.body)).encode(), path
