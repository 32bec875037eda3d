"""Raw HTTP/1.1 for tests of what a server does with requests no client library would send:
write bytes on a new connection, read what comes back until the server closes it, and read
the first response's status and JSON body."""

from __future__ import annotations

import json
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
