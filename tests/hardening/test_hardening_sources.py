"""Every garbage kind, at source level: a failed read with a message that says why, never a
number; the same source reads the good answer right after (nothing stuck, nothing cached).

The garbage is served by a real HTTP server on loopback (`garbage.py`); the sources are the
real `prometheus`, `http_json` and `promql` readers.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator

import pytest

from autoscaler.policy.model import HttpJsonSource, PrometheusSource, PromQLSource
from autoscaler.sources.base import Source, SourceError
from autoscaler.sources.common import BadValueError, load_value
from autoscaler.sources.registry import build_source
from tests.hardening.garbage import (
    GOOD_VALUE,
    SLOW_TIMEOUT,
    SOURCE_TYPES,
    garbage_kinds,
    good,
    serve,
)
from tests.sources.httpserver import LocalHttpServer

pytestmark = pytest.mark.anyio

KINDS = garbage_kinds()

# What each kind's message must say, whatever the source type.
WHY = {
    "negative": r"negative",
    "negative_one_series": r"negative",
    "nan": r"NaN|nan",
    "inf": r"-inf",
    "duplicate": r"duplicate",
    "huge": r"max_body",
    "huge_no_length": r"max_body",
    "trickle": r"timeout",
    "deep": r"nested deeper|malformed",
    "bignum": r"not a finite number|digits",
    "wrong_content_type": r"malformed OpenMetrics|JSON",
    "truncated": r"malformed|JSON",
    "dropped": r"dropped",
    "binary": r"malformed|JSON|not valid",
}
assert set(WHY) == set(KINDS), "every garbage kind needs its expected message"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalHttpServer]:
    srv = LocalHttpServer().start()
    try:
        yield srv
    finally:
        srv.stop()


def make_source(source_type: str, base: str) -> Source:
    spec: PrometheusSource | HttpJsonSource | PromQLSource
    if source_type == "prometheus":
        spec = PrometheusSource(urls=(f"{base}/metrics",), metric="queue_depth")
    elif source_type == "http_json":
        spec = HttpJsonSource(url=f"{base}/stats", path="queue")
    else:
        spec = PromQLSource(url=base, query="queue_depth")
    spec = type(spec)(**{**_fields(spec), "timeout": SLOW_TIMEOUT})
    return build_source(spec, name="load")


def _fields(spec: object) -> dict[str, object]:
    return {name: getattr(spec, name) for name in spec.__slots__}  # type: ignore[attr-defined]


def test_the_catalogue_covers_every_kind_the_issue_names() -> None:
    named = {"negative", "nan", "inf", "duplicate", "huge", "trickle", "deep", "bignum"}
    named |= {"wrong_content_type", "truncated", "binary"}
    assert named <= set(KINDS)


@pytest.mark.parametrize("source_type", SOURCE_TYPES)
@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_garbage_is_a_failed_read_with_a_reason(
    server: LocalHttpServer, kind: str, source_type: str
) -> None:
    source = make_source(source_type, server.url(""))
    try:
        serve(server, KINDS[kind])
        with pytest.raises(SourceError) as failed:
            value = await source.read()
            pytest.fail(f"{kind} read as {value}")
        assert failed.value.message, kind
        assert re.search(WHY[kind], failed.value.message), failed.value.message
        assert "Traceback" not in failed.value.message
        serve(server, good())
        assert await source.read() == GOOD_VALUE
    finally:
        await source.aclose()


def test_load_value_refuses_what_cannot_be_load() -> None:
    assert load_value("m", 3, "queue depth") == 3.0
    assert str(load_value("m", -0.0, "queue depth")) == "0.0"
    with pytest.raises(BadValueError, match=r"m: queue depth -50 is negative"):
        load_value("m", -50, "queue depth")
    for bad in (float("inf"), float("nan"), 10**400, True, "5"):
        with pytest.raises(BadValueError):
            load_value("m", bad, "queue depth")  # type: ignore[arg-type]


def _mutations(text: str, rng: random.Random) -> str:
    """A random edit of `text`: cut, duplicate a slice, insert a character, flip a sign."""
    i, j = sorted(rng.randrange(len(text) + 1) for _ in range(2))
    edit = rng.randrange(5)
    if edit == 0:
        return text[:i]
    if edit == 1:
        return text[:j] + text[i:j] + text[j:]
    if edit == 2:
        return text[:i] + rng.choice('-{}[]",:0e9.\x00\\') + text[i:]
    if edit == 3:
        return text.replace("15", rng.choice(["-15", "1e400", "-0", "NaN", '15, "queue": 0']))
    return text[:i] + text[j:]


async def test_mutated_answers_never_read_as_a_negative_or_infinite_value(
    server: LocalHttpServer,
) -> None:
    """200 seeded mutations of each good answer: a finite value >= 0 or a SourceError."""
    rng = random.Random(14)
    sources = {t: make_source(t, server.url("")) for t in SOURCE_TYPES}
    originals = good()
    try:
        for _ in range(200):
            answers = tuple(
                type(reply)(
                    _mutations(reply.body if isinstance(reply.body, str) else "", rng),
                    content_type=reply.content_type,
                )
                for reply in originals
            )
            serve(server, answers)  # type: ignore[arg-type]
            for source_type, source in sources.items():
                try:
                    value = await source.read()
                except SourceError as exc:
                    assert exc.message
                    continue
                assert value >= 0 and value == value and value != float("inf"), (
                    source_type,
                    value,
                    answers,
                )
    finally:
        for source in sources.values():
            await source.aclose()


def test_duplicate_keys_anywhere_in_a_json_answer_are_ambiguous() -> None:
    from autoscaler.sources.jsondoc import JsonDocError, loads

    for text in ('{"queue": 1, "queue": 0}', '{"a": {"b": [{"q": 1, "q": 0}]}}'):
        with pytest.raises(JsonDocError, match="duplicate key"):
            loads(text)
    assert loads(json.dumps({"a": [{"q": 1}, {"q": 0}]})) == {"a": [{"q": 1}, {"q": 0}]}


# --- the timeout covers parsing; parse threads are bounded ------------------------------------


def _many_series(size: int) -> bytes:
    lines = [b"# TYPE queue_depth gauge\n"]
    total, index = 0, 0
    while total < size:
        line = b'queue_depth{i="%d"} 0\n' % index
        lines.append(line)
        total += len(line)
        index += 1
    return b"".join(lines)


async def test_the_timeout_covers_parsing_not_only_the_transfer(server: LocalHttpServer) -> None:
    """~250,000 series (7 MB, under the 8 MiB cap) take seconds to parse; with a 0.1 s timeout
    the read fails as a timeout. Before, the parse ran on the event loop past the deadline and
    the read returned 0 (idle) seconds late."""
    from tests.sources.httpserver import Reply

    server.routes["/metrics"] = Reply(_many_series(7 * 1024 * 1024))
    source = build_source(
        PrometheusSource(urls=(server.url("/metrics"),), metric="queue_depth", timeout=0.1),
        name="load",
    )
    try:
        with pytest.raises(SourceError, match=r"timeout"):
            value = await source.read()
            pytest.fail(f"read {value} past the timeout")
    finally:
        await source.aclose()


async def test_abandoned_parse_threads_are_bounded() -> None:
    """Parses that outlive their read's timeout keep counting; past MAX_PARSE_THREADS alive,
    a read fails at once instead of starting another thread."""
    import threading

    import anyio

    from autoscaler.sources import common

    release = threading.Event()

    def slow_parse() -> float:
        release.wait(60)
        return 1.0

    async def no_parse_alive() -> None:  # earlier tests may have abandoned parses
        for _ in range(12_000):  # generous bound
            if common._Job.alive == 0:
                return
            await anyio.sleep(0.01)
        raise AssertionError(f"{common._Job.alive} parse threads still alive")

    await no_parse_alive()
    big = common.PARSE_INLINE + 1
    try:
        for _ in range(common.MAX_PARSE_THREADS):
            with pytest.raises(TimeoutError), anyio.fail_after(0.05):
                await common.off_loop("load", big, slow_parse)
        with pytest.raises(SourceError, match="still being parsed; read skipped"):
            await common.off_loop("load", big, slow_parse)
    finally:
        release.set()
    await no_parse_alive()
    assert await common.off_loop("load", big, lambda: 2.0) == 2.0


@pytest.mark.parametrize("value", [-50.0, -1e-9, float("-inf"), float("inf"), float("nan")])
async def test_no_source_type_can_leak_a_value_that_is_not_load(value: float) -> None:
    """`bounded_read` is the one road out of every source (Redis, RabbitMQ and NATS included:
    their servers cannot send a negative, a proxy or a fake could): the last guard holds."""
    from autoscaler.sources.common import bounded_read

    async def read() -> float:
        return value

    with pytest.raises(BadValueError, match=r"^load: value"):
        await bounded_read("load", 1.0, read)


async def test_max_body_is_a_policy_field_per_source(server: LocalHttpServer) -> None:
    from autoscaler.policy.loader import ValidationFailed, load_policy_text
    from tests.policy.test_policy_errors import BASE
    from tests.sources.httpserver import Reply

    source = f'{{type: http_json, url: "{server.url("/stats")}", path: queue, max_body: 2048}}'
    text = re.sub(r"source: \{[^}]*\}", f"source: {source}", BASE, count=1)
    (policy,) = load_policy_text(text)
    spec = policy.metrics[0].source
    assert isinstance(spec, HttpJsonSource) and spec.max_body == 2048
    reader = build_source(spec, name="load")
    try:
        server.routes["/stats"] = Reply(json.dumps({"queue": 3, "pad": "x" * 1500}))
        assert await reader.read() == 3.0
        server.routes["/stats"] = Reply(json.dumps({"queue": 3, "pad": "x" * 3000}))
        with pytest.raises(SourceError, match=r"the cap is max_body: 2048"):
            await reader.read()
    finally:
        await reader.aclose()
    with pytest.raises(ValidationFailed, match="max_body"):
        load_policy_text(text.replace("max_body: 2048", "max_body: 10"))


def _histogram(count: float, buckets: dict[str, float], total: float) -> str:
    lines = ["# TYPE lat histogram"]
    lines += [f'lat_bucket{{le="{le}"}} {n:g}' for le, n in buckets.items()]
    lines += [f"lat_sum {total:g}", f"lat_count {count:g}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("first", "second", "quantile", "why"),
    [
        # Signed observations are legal in Prometheus; a negative latency is not load.
        (
            _histogram(0, {"-5": 0, "-1": 0, "+Inf": 0}, 0),
            _histogram(10, {"-5": 10, "-1": 10, "+Inf": 10}, -40),
            0.5,
            r"histogram lat quantile 0\.5 -\d.* is negative",
        ),
        (
            _histogram(0, {"-5": 0, "-1": 0, "+Inf": 0}, 0),
            _histogram(10, {"-5": 10, "-1": 10, "+Inf": 10}, -40),
            None,
            r"histogram lat mean -4 is negative",
        ),
        (
            _histogram(0, {"1": 0, "+Inf": 0}, 0),
            _histogram(-3, {"1": 0, "+Inf": 0}, 0),
            None,
            r"a count is negative",
        ),
        (
            _histogram(0, {"1": 0, "+Inf": 0}, 0),
            _histogram(0, {"1": -2, "+Inf": 0}, 0),
            None,
            r"a count is negative",
        ),
    ],
)
async def test_histograms_with_negative_figures_are_failed_reads(
    server: LocalHttpServer, first: str, second: str, quantile: float | None, why: str
) -> None:
    from tests.sources.httpserver import Reply

    spec = PrometheusSource(urls=(server.url("/metrics"),), metric="lat", quantile=quantile)
    source = build_source(spec, name="load")
    try:
        server.routes["/metrics"] = Reply(first)
        with pytest.raises(SourceError):  # the first scrape only records the baseline
            await source.read()
        server.routes["/metrics"] = Reply(second)
        with pytest.raises(SourceError, match=why):
            value = await source.read()
            pytest.fail(f"read {value}")
    finally:
        await source.aclose()


@pytest.mark.parametrize("source_type", SOURCE_TYPES)
async def test_a_compressed_bomb_is_refused_without_inflating_it(
    server: LocalHttpServer, source_type: str
) -> None:
    """100 MB of padding in ~100 KB of gzip: refused at max_body, and the read never holds
    more than a few times the cap (httpx alone inflates each 64 KB chunk whole: ~64 MB)."""
    from tests.bombs import gzip_bomb, peak_while_refused
    from tests.sources.httpserver import Reply

    size = 100 * 1024 * 1024
    bomb = {
        "prometheus": gzip_bomb(size, b"x", b"# ", b"\nqueue_depth 0\n"),
        "http_json": gzip_bomb(size, b"x", b'{"pad": "', b'", "queue": 0}'),
        "promql": gzip_bomb(size, b"x", b'{"pad": "', b'", "status": "x"}'),
    }[source_type]
    reply = Reply(bomb, headers={"Content-Encoding": "gzip"})
    server.routes.update({"/metrics": reply, "/stats": reply, "/api/v1/query": reply})
    source = make_source(source_type, server.url(""))
    cap = 8 * 1024 * 1024 if source_type == "prometheus" else 1024 * 1024
    try:
        peak = await peak_while_refused(source.read, SourceError, "max_body")
    finally:
        await source.aclose()
    assert peak < 4 * cap, f"peak {peak / 1e6:.0f} MB while refusing a bomb (cap {cap})"


@pytest.mark.parametrize(
    ("encoding", "pack", "expected"),
    [
        ("gzip", "gzip", 7.0),
        ("deflate", "zlib", 7.0),
        ("deflate", "raw", 7.0),  # deflate without the zlib wrapper, as some servers send it
        ("br", "none", "encoded as 'br'"),
        ("gzip", "none", "cannot be decompressed"),
    ],
)
async def test_compressed_answers_are_read_within_the_cap(
    server: LocalHttpServer, encoding: str, pack: str, expected: float | str
) -> None:
    import gzip
    import zlib

    from tests.sources.httpserver import Reply

    doc = json.dumps({"queue": 7, "pad": "y" * 50_000}).encode()
    body = {
        "gzip": gzip.compress(doc),
        "zlib": zlib.compress(doc),
        "raw": zlib.compress(doc)[2:-4],
        "none": doc,
    }[pack]
    server.routes["/stats"] = Reply(body, headers={"Content-Encoding": encoding})
    source = make_source("http_json", server.url(""))
    try:
        if isinstance(expected, float):
            assert await source.read() == expected
        else:
            with pytest.raises(SourceError, match=expected):
                await source.read()
        assert server.requests[-1].headers["accept-encoding"] == "gzip, deflate"
    finally:
        await source.aclose()
