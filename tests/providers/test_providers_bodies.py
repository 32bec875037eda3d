"""A provider's answer is decompressed by the client itself, within the body cap, over real
loopback HTTP: a gzip bomb is refused without being inflated, a compressed body cut short is
refused, gzip and deflate answers are read as before (`autoscaler/httpbody.py`)."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import pytest

from autoscaler.providers.base import Provider, TemporaryError
from autoscaler.providers.http import MAX_RESPONSE_BODY
from autoscaler.providers.nebius import BASE
from autoscaler.providers.registry import build_provider
from tests.bombs import MiB, gzip_bomb, peak_while_refused
from tests.providers.helpers import profile, run
from tests.sources.httpserver import LocalHttpServer, Reply


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    served = LocalHttpServer().start()
    yield served
    served.stop()


def nebius(server: LocalHttpServer) -> Provider:
    return build_provider(profile("nebius", server.url(""), max_retries=0))


def answer(body: bytes, encoding: str, mode: str = "normal") -> Reply:
    return Reply(
        body, content_type="application/json", headers={"Content-Encoding": encoding}, mode=mode
    )


def test_the_bomb_is_gzip_of_what_it_says() -> None:
    assert gzip.decompress(gzip_bomb(3 * MiB, b"x", b"[", b"]")) == b"[" + b"x" * 3 * MiB + b"]"


def test_a_gzip_bomb_is_refused_as_too_large_without_inflating_it(
    server: LocalHttpServer,
) -> None:
    """1 GiB of zeros in ~1 MB of gzip: httpx alone inflated each 64 KB network chunk whole
    (~64 MB) before the cap was checked."""
    server.routes[BASE] = answer(gzip_bomb(1024 * MiB), "gzip")

    async def scenario() -> None:
        provider = nebius(server)
        too_large = f"larger than the {MAX_RESPONSE_BODY}-byte cap"
        try:
            peak = await peak_while_refused(provider.list, TemporaryError, too_large)
        finally:
            await provider.aclose()
        assert peak < 20 * MiB, f"peak {peak / MiB:.0f} MiB while refusing a bomb"

    run(scenario())
    assert server.requests[-1].headers["accept-encoding"] == "gzip, deflate"


def test_a_gzip_answer_cut_short_is_refused(server: LocalHttpServer) -> None:
    # The cut falls after a whole JSON document but before the gzip stream's end: without a
    # Content-Length only the unfinished stream tells the answer is incomplete.
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    cut = packer.compress(b'{"endpoints": []}') + packer.flush(zlib.Z_SYNC_FLUSH)
    server.routes[BASE] = answer(cut, "gzip", mode="nolength")

    async def scenario() -> None:
        provider = nebius(server)
        try:
            with pytest.raises(TemporaryError, match="gzip body that ends before its end"):
                await provider.list()
        finally:
            await provider.aclose()

    run(scenario())


DOC = b'{"endpoints": [], "pad": "' + b"y" * 300_000 + b'"}'


@pytest.mark.parametrize(
    ("encoding", "body", "refused"),
    [
        ("gzip", gzip.compress(DOC), None),
        ("deflate", zlib.compress(DOC), None),
        ("deflate", zlib.compress(DOC)[2:-4], None),  # raw deflate, as some servers send it
        ("identity", DOC, None),
        ("gzip", gzip.compress(DOC) + gzip.compress(b" "), None),  # two gzip members
        ("br", DOC, "a body encoded as 'br'"),
        ("gzip", DOC, "a body that cannot be decompressed"),
    ],
)
def test_compressed_answers_are_read_within_the_cap(
    server: LocalHttpServer, encoding: str, body: bytes, refused: str | None
) -> None:
    server.routes[BASE] = answer(body, encoding)

    async def scenario() -> None:
        provider = nebius(server)
        try:
            if refused is None:
                assert await provider.list() == []
            else:
                with pytest.raises(TemporaryError, match=refused):
                    await provider.list()
        finally:
            await provider.aclose()

    run(scenario())
