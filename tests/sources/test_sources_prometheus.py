"""The `prometheus` scrape source over real HTTP: aggregation, rates, histograms, outages.

Expositions are served by a real local HTTP server (`httpserver.py`); a fake clock gives the
seconds between scrapes, so rates are exact without sleeping. Hypothesis feeds malformed bodies
through `httpx.MockTransport` and checks that only SourceError ever leaves `read()`.
"""

from __future__ import annotations

import math

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.policy.model import PrometheusSource
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError
from autoscaler.sources.common import EmptyResultError, NeedsBaselineError
from autoscaler.sources.prometheus import PrometheusScrapeSource
from autoscaler.sources.registry import build_source
from tests.services import free_port
from tests.sources.expositions import (
    FIXTURES,
    EngineState,
    VllmState,
    litellm_exposition,
    vllm_exposition,
)
from tests.sources.httpserver import LocalHttpServer, Reply, serving
from tests.sources.spellings import NOT_WRITTEN, refused

pytestmark = pytest.mark.anyio
FIXTURE = (FIXTURES / "vllm_metrics.txt").read_text()
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def source(urls, clock=None, **fields) -> PrometheusScrapeSource:
    spec = PrometheusSource(urls=tuple(urls), **fields)
    return PrometheusScrapeSource(spec, name="waiting", clock=clock or FakeClock())


@pytest.mark.parametrize(
    ("how", "expected"), [("sum", 8.0), ("avg", 4.0), ("max", 5.0), ("min", 3.0)]
)
async def test_vllm_gauge_aggregates(how: str, expected: float) -> None:
    with serving(metrics=Reply(FIXTURE)) as srv:
        src = build_source(
            PrometheusSource(urls=(srv.url(),), metric="vllm:num_requests_waiting", aggregate=how),
            name="waiting",
        )
        assert await src.read() == expected
        await src.aclose()


@pytest.mark.parametrize("openmetrics", [False, True])
@pytest.mark.parametrize("text", NOT_WRITTEN)
async def test_a_value_no_exporter_writes_is_a_failed_read(text: str, openmetrics: bool) -> None:
    # The parsers read a value with float(): an Arabic-Indic 3 read as 3, "+nan" as NaN.
    body = f'# TYPE q gauge\nq{{i="a"}} {text}\n' + ("# EOF\n" if openmetrics else "")
    reply = Reply(body, content_type=OPENMETRICS) if openmetrics else Reply(body)
    with serving(metrics=reply) as srv:
        error = await refused(source([srv.url()], metric="q"))
    assert str(error).startswith(f"waiting: {srv.url()}: malformed ")
    assert f"value {text!r} is not a number" in str(error)


async def test_several_urls_are_scraped_concurrently_and_aggregated() -> None:
    replica_b = vllm_exposition(VllmState(engines={"0": EngineState(waiting=10)}))
    with serving(a=Reply(FIXTURE), b=Reply(replica_b)) as srv:
        src = source([srv.url("/a"), srv.url("/b")], metric="vllm:num_requests_waiting")
        assert await src.read() == 3 + 5 + 10
        max_src = source(
            [srv.url("/a"), srv.url("/b")],
            metric="vllm:num_requests_waiting",
            aggregate="max",
            labels={"engine": "0"},
        )
        assert await max_src.read() == 10
        # One connection pool for all reads.
        assert await src.read() == 18
        await src.aclose()
        await max_src.aclose()


async def test_openmetrics_by_content_type() -> None:
    body = vllm_exposition(openmetrics=True)
    with serving(
        om=Reply(body, content_type=OPENMETRICS), bad=Reply(FIXTURE, content_type=OPENMETRICS)
    ) as srv:
        src = source([srv.url("/om")], metric="vllm:kv_cache_usage_perc", aggregate="avg")
        assert await src.read() == 0.375
        assert srv.requests[-1].headers["accept"].startswith("text/plain;version=0.0.4")
        bad = source([srv.url("/bad")], metric="vllm:kv_cache_usage_perc")
        with pytest.raises(PermanentSourceError, match="malformed OpenMetrics"):
            await bad.read()
        await src.aclose()
        await bad.aclose()


async def test_counter_rate_between_scrapes_and_reset() -> None:
    clock = FakeClock()
    server = LocalHttpServer().start()
    try:
        server.routes["/metrics"] = Reply(FIXTURE)
        src = source([server.url()], clock, metric="vllm:prompt_tokens_total")
        with pytest.raises(NeedsBaselineError, match="second scrape"):
            await src.read()
        later = VllmState(
            engines={"0": EngineState(prompt_tokens=1200), "1": EngineState(prompt_tokens=3300)}
        )
        server.routes["/metrics"] = Reply(vllm_exposition(later))
        clock.now += 10
        assert await src.read() == pytest.approx((200 + 300) / 10)
        # Engine 1 restarts: its counter drops to 40, which is its increase.
        restarted = VllmState(
            engines={"0": EngineState(prompt_tokens=1300), "1": EngineState(prompt_tokens=40)}
        )
        server.routes["/metrics"] = Reply(vllm_exposition(restarted))
        clock.now += 20
        assert await src.read() == pytest.approx((100 + 40) / 20)
        await src.aclose()
    finally:
        server.stop()


async def test_litellm_request_rate_per_model() -> None:
    clock = FakeClock()
    server = LocalHttpServer().start()
    try:
        server.routes["/metrics"] = Reply(litellm_exposition({"gpt-4o": 100, "llama": 50}))
        src = source(
            [server.url()],
            clock,
            metric="litellm_proxy_total_requests_metric_total",
            labels={"requested_model": "llama"},
        )
        with pytest.raises(NeedsBaselineError):
            await src.read()
        server.routes["/metrics"] = Reply(litellm_exposition({"gpt-4o": 160, "llama": 80}))
        clock.now += 15
        assert await src.read() == pytest.approx(30 / 15)
        await src.aclose()
    finally:
        server.stop()


async def test_histogram_quantile_and_mean_over_the_interval() -> None:
    clock = FakeClock()
    server = LocalHttpServer().start()
    try:
        first = VllmState(
            engines={"0": EngineState(ttft=(5.0, 5.0)), "1": EngineState(ttft=(9.0,))}
        )
        server.routes["/metrics"] = Reply(vllm_exposition(first))
        median = source(
            [server.url()], clock, metric="vllm:time_to_first_token_seconds", quantile=0.5
        )
        mean = source([server.url()], clock, metric="vllm:time_to_first_token_seconds")
        for src in (median, mean):
            with pytest.raises(NeedsBaselineError):
                await src.read()
        # The interval adds 0.3, 0.3, 0.3 (engine 0) and 0.6 (engine 1): the old slow
        # observations must not count.
        second = VllmState(
            engines={
                "0": EngineState(ttft=(5.0, 5.0, 0.3, 0.3, 0.3)),
                "1": EngineState(ttft=(9.0, 0.6)),
            }
        )
        server.routes["/metrics"] = Reply(vllm_exposition(second))
        clock.now += 15
        # rank 2 of 4 falls in (0.25, 0.5] holding 3: 0.25 + 0.25 * 2/3
        assert await median.read() == pytest.approx(0.25 + 0.25 * 2 / 3)
        assert await mean.read() == pytest.approx((0.9 + 0.6) / 4)
        # Nothing new: no observations in the interval is "empty".
        clock.now += 15
        with pytest.raises(EmptyResultError, match="no observations"):
            await median.read()
        for src in (median, mean):
            await src.aclose()
    finally:
        server.stop()


async def test_histogram_max_over_per_series_quantiles() -> None:
    clock = FakeClock()
    server = LocalHttpServer().start()
    try:
        server.routes["/metrics"] = Reply(
            vllm_exposition(
                VllmState(engines={"0": EngineState(ttft=()), "1": EngineState(ttft=())})
            )
        )
        src = source(
            [server.url()],
            clock,
            metric="vllm:time_to_first_token_seconds",
            quantile=1.0,
            aggregate="max",
        )
        with pytest.raises(NeedsBaselineError):
            await src.read()
        server.routes["/metrics"] = Reply(
            vllm_exposition(
                VllmState(engines={"0": EngineState(ttft=(0.3,)), "1": EngineState(ttft=(3.0,))})
            )
        )
        clock.now += 15
        assert await src.read() == 5.0  # engine 1's single observation: bucket (2.5, 5.0]
        await src.aclose()
    finally:
        server.stop()


async def test_empty_and_nan_follow_on_empty() -> None:
    nan_body = "# TYPE q gauge\nq NaN\n"
    with serving(metrics=Reply(FIXTURE), nan=Reply(nan_body), inf=Reply("q +Inf\n")) as srv:
        missing = source([srv.url()], metric="vllm:num_requests_waiting", labels={"engine": "9"})
        with pytest.raises(EmptyResultError, match=r'engine="9".*on_empty: zero'):
            await missing.read()
        zero = source([srv.url()], metric="vllm:absent", on_empty="zero")
        assert await zero.read() == 0.0
        nan = source([srv.url("/nan")], metric="q")
        with pytest.raises(EmptyResultError, match="NaN"):
            await nan.read()
        nan_zero = source([srv.url("/nan")], metric="q", on_empty="zero")
        assert await nan_zero.read() == 0.0
        inf = source([srv.url("/inf")], metric="q", on_empty="zero")
        with pytest.raises(TemporarySourceError, match="finite"):
            await inf.read()
        for s in (missing, zero, nan, nan_zero, inf):
            await s.aclose()


async def test_type_mismatch_is_permanent() -> None:
    with serving(metrics=Reply(FIXTURE)) as srv:
        src = source([srv.url()], metric="vllm:num_requests_waiting", quantile=0.9)
        with pytest.raises(PermanentSourceError, match="quantile applies to histograms"):
            await src.read()
        await src.aclose()
    with pytest.raises(PermanentSourceError, match="not a valid regex"):
        source(["http://127.0.0.1:1/metrics"], metric="m", labels_regex={"a": "("})


# --- outages ---------------------------------------------------------------------------------


async def test_server_down_then_back() -> None:
    port = free_port()
    src = source([f"http://127.0.0.1:{port}/metrics"], metric="vllm:num_requests_waiting")
    with pytest.raises(
        TemporarySourceError, match=f"waiting: cannot connect to http://127.0.0.1:{port}"
    ):
        await src.read()
    server = LocalHttpServer(port=port).start()
    try:
        server.routes["/metrics"] = Reply(FIXTURE)
        assert await src.read() == 8.0
    finally:
        server.stop()
        await src.aclose()


async def test_slow_server_times_out_then_recovers() -> None:
    with serving(metrics=Reply(mode="stall")) as srv:
        src = source([srv.url()], metric="vllm:num_requests_waiting", timeout=0.3)
        with pytest.raises(TemporarySourceError, match=r"did not answer in time|timeout"):
            await src.read()
        srv.routes["/metrics"] = Reply(FIXTURE)
        assert await src.read() == 8.0
        await src.aclose()


async def test_connection_dropped_mid_read_then_recovers() -> None:
    with serving(metrics=Reply(FIXTURE, mode="drop")) as srv:
        src = source([srv.url()], metric="vllm:num_requests_waiting")
        with pytest.raises(TemporarySourceError, match="dropped"):
            await src.read()
        srv.routes["/metrics"] = Reply(FIXTURE)
        assert await src.read() == 8.0
        await src.aclose()


@pytest.mark.parametrize(
    ("status", "error", "match"),
    [
        (500, TemporarySourceError, "HTTP 500"),
        (503, TemporarySourceError, "HTTP 503"),
        (401, PermanentSourceError, "credentials"),
        (404, PermanentSourceError, "404"),
    ],
)
async def test_http_errors(status: int, error: type, match: str) -> None:
    with serving(metrics=Reply("nope", status=status)) as srv:
        src = source([srv.url()], metric="m")
        with pytest.raises(error, match=match) as info:
            await src.read()
        assert type(info.value) is error
        await src.aclose()


async def test_one_of_several_urls_down_fails_the_read() -> None:
    port = free_port()
    with serving(metrics=Reply(FIXTURE)) as srv:
        src = source(
            [srv.url(), f"http://127.0.0.1:{port}/metrics"], metric="vllm:num_requests_waiting"
        )
        with pytest.raises(TemporarySourceError, match=rf"1 of 2 URLs failed: .*{port}"):
            await src.read()
        await src.aclose()


async def test_describe_and_errors_hide_passwords() -> None:
    src = source(["http://user:hunter2@127.0.0.1:1/metrics"], metric="m")
    assert "hunter2" not in src.describe
    with pytest.raises(SourceError) as info:
        await src.read()
    assert "hunter2" not in str(info.value)
    await src.aclose()


# --- Hypothesis: whatever the body, only SourceError leaves read() ---------------------------

bodies = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(FIXTURE.splitlines()), max_size=30).map("\n".join),
    st.tuples(st.text(max_size=40), st.sampled_from(FIXTURE.splitlines())).map(
        lambda t: t[1][: len(t[1]) // 2] + t[0]
    ),
)


@settings(max_examples=60)
@given(
    body=bodies,
    content_type=st.sampled_from(["text/plain; version=0.0.4", OPENMETRICS, "text/html"]),
    metric=st.sampled_from(
        [
            "vllm:num_requests_waiting",
            "vllm:prompt_tokens_total",
            "vllm:time_to_first_token_seconds",
        ]
    ),
)
def test_malformed_bodies_give_typed_errors(body: str, content_type: str, metric: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body, headers={"content-type": content_type})

    async def run() -> None:
        clock = FakeClock()
        src = PrometheusScrapeSource(
            PrometheusSource(
                urls=("http://exporter/metrics",),
                metric=metric,
                quantile=0.5 if metric.endswith("seconds") else None,
            ),
            name="m",
            transport=httpx.MockTransport(handler),
            clock=clock,
        )
        for _ in range(2):
            clock.now += 1
            try:
                value = await src.read()
            except SourceError:
                continue
            assert math.isfinite(value)
        await src.aclose()

    anyio.run(run)


def _summary(count: int, total: float, p99: float) -> str:
    return (
        "# HELP rpc_seconds RPC latency.\n# TYPE rpc_seconds summary\n"
        f'rpc_seconds{{quantile="0.5"}} 0.2\nrpc_seconds{{quantile="0.99"}} {p99}\n'
        f"rpc_seconds_sum {total}\nrpc_seconds_count {count}\n"
    )


async def test_summary_quantile_series_and_interval_mean() -> None:
    clock = FakeClock()
    server = LocalHttpServer().start()
    try:
        server.routes["/metrics"] = Reply(_summary(10, 4.0, 1.5))
        p99 = source([server.url()], clock, metric="rpc_seconds", quantile=0.99)
        p90 = source([server.url()], clock, metric="rpc_seconds", quantile=0.9)
        mean = source([server.url()], clock, metric="rpc_seconds")
        assert await p99.read() == 1.5  # the summary's own quantile: no baseline needed
        with pytest.raises(PermanentSourceError, match=r"no quantile 0\.9 \(it has: 0\.5, 0\.99\)"):
            await p90.read()
        with pytest.raises(NeedsBaselineError):
            await mean.read()
        server.routes["/metrics"] = Reply(_summary(14, 6.0, 1.7))
        clock.now += 15
        assert await mean.read() == pytest.approx(2.0 / 4)
        for s in (p99, p90, mean):
            await s.aclose()
    finally:
        server.stop()


async def test_a_real_prometheus_client_exporter_keeps_vllm_names() -> None:
    """prometheus-client's own HTTP server negotiates the format from Accept; asking for
    OpenMetrics would get `vllm_num_requests_waiting` sample lines under a
    `vllm:num_requests_waiting` header. The source asks for text and reads the real names."""
    from prometheus_client import start_http_server

    from tests.sources.expositions import vllm_registry

    port = free_port()
    server, thread = start_http_server(port, "127.0.0.1", vllm_registry())
    try:
        src = source([f"http://127.0.0.1:{port}/metrics"], metric="vllm:num_requests_waiting")
        assert await src.read() == 8.0
        await src.aclose()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
