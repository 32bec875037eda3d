"""Compression bombs for the tests of every HTTP client that reads compressed answers, and the
peak memory a reader holds while it refuses one."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable

import pytest

MiB = 1024 * 1024


def gzip_bomb(size: int, filler: bytes = b"\0", head: bytes = b"", tail: bytes = b"") -> bytes:
    """gzip of head + `size` bytes of filler (whole MiB) + tail, in ~1 KB per MiB and no time:
    one compressed MiB repeated, each piece ending in a full flush so none refers back to
    another."""
    block = filler * (MiB // len(filler))
    pieces = size // MiB

    def deflated(data: bytes, end: int) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return packer.compress(data) + packer.flush(end)

    crc = zlib.crc32(head)
    for _ in range(pieces):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    length = len(head) + pieces * MiB + len(tail)
    return b"".join(
        (
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff",  # gzip header: deflate, no name
            deflated(head, zlib.Z_FULL_FLUSH),
            deflated(block, zlib.Z_FULL_FLUSH) * pieces,
            deflated(tail, zlib.Z_FINISH),
            struct.pack("<II", crc, length & 0xFFFFFFFF),
        )
    )


async def peak_while_refused(
    read: Callable[[], Awaitable[object]], error: type[Exception], match: str
) -> int:
    """The most bytes Python held at once (tracemalloc), over what it held before, while
    `read()` ran and raised `error` matching `match` (as `pytest.raises` checks it)."""
    tracemalloc.start()
    try:
        with pytest.raises(error, match=match):
            await read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
