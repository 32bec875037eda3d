"""The `prometheus` source against hostile answers over real HTTP: numbers beyond float range,
infinite summary figures, histogram sums that overflow, and bodies cut short.

Each case is an answer the old code read as a number (often 0, "idle") or let escape as an
unexplained error; every one must be a failed read that says what was wrong.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib

import pytest

from autoscaler.policy.model import PrometheusSource
from autoscaler.sources.base import PermanentSourceError, TemporarySourceError
from autoscaler.sources.common import BadValueError, NeedsBaselineError
from autoscaler.sources.prometheus import PrometheusScrapeSource
from tests.sources.httpserver import LocalHttpServer, Reply, serving

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 10.0
        return self.now


def source(srv: LocalHttpServer, **fields: object) -> PrometheusScrapeSource:
    spec = PrometheusSource(urls=(srv.url(),), **fields)  # type: ignore[arg-type]
    return PrometheusScrapeSource(spec, name="load", clock=FakeClock())


async def read_twice(srv: LocalHttpServer, first: str, second: str, **fields: object) -> float:
    """The second read (the first records the baseline a rate or interval figure needs, or
    already fails)."""
    src = source(srv, **fields)
    try:
        srv.routes["/metrics"] = Reply(first)
        with contextlib.suppress(NeedsBaselineError):
            await src.read()
        srv.routes["/metrics"] = Reply(second)
        return await src.read()
    finally:
        await src.aclose()


async def test_an_integer_beyond_float_range_is_a_bad_value_not_an_unexplained_error() -> None:
    # The text parser reads `m 999...9` (400 digits) as a Python int; float() of it raised
    # OverflowError, which left the read as "unexpected ExceptionGroup".
    with serving(metrics=Reply("# TYPE m gauge\nm " + "9" * 400 + "\n")) as srv:
        src = source(srv, metric="m")
        with pytest.raises(BadValueError, match="not a finite number"):
            await src.read()
        await src.aclose()


@pytest.mark.parametrize(("figure", "value"), [("sum", "+Inf"), ("count", "+Inf")])
async def test_an_infinite_summary_sum_or_count_is_a_failed_read_not_idle(
    figure: str, value: str
) -> None:
    # inf - inf is NaN, which passed as "no data": with on_empty: zero it read as 0 (idle).
    def body(count: int) -> str:
        figures = {"sum": "12", "count": str(count), figure: value}
        return f"# TYPE s summary\ns_sum {figures['sum']}\ns_count {figures['count']}\n"

    with serving() as srv, pytest.raises(PermanentSourceError, match="finite"):
        await read_twice(srv, body(5), body(10), metric="s", on_empty="zero")


async def test_histogram_series_whose_sum_overflows_are_a_failed_read_not_idle() -> None:
    # Two finite series of 1e308 observations merge (aggregate: sum) into infinite buckets:
    # the quantile's inf / inf was NaN ("no data", 0 with on_empty: zero).
    def body(count: str) -> str:
        lines = ["# TYPE h histogram"]
        for series in ("a", "b"):
            lines += [
                f'h_bucket{{le="1",s="{series}"}} {count}',
                f'h_bucket{{le="+Inf",s="{series}"}} {count}',
                f'h_sum{{s="{series}"}} 1',
                f'h_count{{s="{series}"}} {count}',
            ]
        return "\n".join(lines) + "\n"

    with serving() as srv, pytest.raises(PermanentSourceError, match="beyond float range"):
        await read_twice(srv, body("0"), body("1e308"), metric="h", quantile=0.5, on_empty="zero")


async def test_a_text_body_cut_mid_line_is_a_failed_read() -> None:
    # No Content-Length and the connection closes: the body ends where the server stopped.
    # `m{i="b"} 12` cut after its `1` read as 3 + 1 = 4.
    body = '# TYPE m gauge\nm{i="a"} 3\nm{i="b"} 12\n'
    with serving(metrics=Reply(body[:-2], mode="nolength")) as srv:
        src = source(srv, metric="m")
        with pytest.raises(PermanentSourceError, match="middle of a line"):
            await src.read()
        await src.aclose()


async def test_a_gzip_body_cut_short_is_a_failed_read() -> None:
    # Cut right after a flush point, the inflated text ends with whole lines: only the
    # unfinished gzip stream tells the answer is incomplete (it read as 3, not 3 + 4).
    packer = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    head = packer.compress(b'# TYPE m gauge\nm{i="a"} 3\n') + packer.flush(zlib.Z_SYNC_FLUSH)
    gzip_headers = {"Content-Encoding": "gzip"}
    with serving(metrics=Reply(head, headers=gzip_headers, mode="nolength")) as srv:
        src = source(srv, metric="m")
        with pytest.raises(TemporarySourceError, match="cut short"):
            await src.read()
        await src.aclose()


async def test_every_member_of_a_gzip_body_is_read() -> None:
    # Concatenated gzip members are one body (RFC 1952); only the first one was read.
    body = gzip.compress(b'# TYPE m gauge\nm{i="a"} 3\n') + gzip.compress(b'm{i="b"} 4\n')
    with serving(metrics=Reply(body, headers={"Content-Encoding": "gzip"})) as srv:
        src = source(srv, metric="m")
        assert await src.read() == 7.0
        await src.aclose()


async def test_garbage_after_a_gzip_body_is_a_failed_read() -> None:
    body = gzip.compress(b'# TYPE m gauge\nm{i="a"} 3\n') + b"<html>trailer</html>"
    with serving(metrics=Reply(body, headers={"Content-Encoding": "gzip"})) as srv:
        src = source(srv, metric="m")
        with pytest.raises(PermanentSourceError, match="cannot be decompressed"):
            await src.read()
        await src.aclose()
