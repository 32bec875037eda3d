"""The `promql` source against a real Prometheus server, and its response parser under fuzz.

The session's Prometheus (tests/sources/conftest.py) scrapes an exporter with
test_queue_depth{queue="a"}=5, {queue="b"}=7, test_requests_total=42 and a latency histogram.
"""

from __future__ import annotations

import json
import math

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.policy.model import BasicAuth, PromQLSource, SecretRef
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError
from autoscaler.sources.common import EmptyResultError
from autoscaler.sources.exposition import Selector, histogram_quantile, parse_exposition, select
from autoscaler.sources.promql import PromQLQuerySource, QueryResponseError, parse_query_response
from autoscaler.sources.registry import build_source
from tests.services import free_port
from tests.sources.conftest import PROM_PASSWORD, PROM_USER, PrometheusServer
from tests.sources.httpserver import Reply, serving
from tests.sources.spellings import NOT_WRITTEN, PADDED, refused

pytestmark = pytest.mark.anyio
PASSWORD_ENV = "AUTOSCALER_TEST_PROM_PASSWORD"


@pytest.fixture
def prom(prometheus_server: PrometheusServer, monkeypatch: pytest.MonkeyPatch) -> PrometheusServer:
    monkeypatch.setenv(PASSWORD_ENV, PROM_PASSWORD)
    return prometheus_server


def spec(server: PrometheusServer, query: str, **fields) -> PromQLSource:
    auth = BasicAuth(PROM_USER, SecretRef(env=PASSWORD_ENV))
    return PromQLSource(url=server.url, query=query, basic_auth=auth, **fields)


async def read(server: PrometheusServer, query: str, **fields) -> float:
    src = build_source(spec(server, query, **fields), name="kv")
    try:
        return await src.read()
    finally:
        await src.aclose()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sum(test_queue_depth)", 12.0),
        ('test_queue_depth{queue="a"}', 5.0),
        ("max(test_queue_depth)", 7.0),
        ("scalar(sum(test_queue_depth))", 12.0),
        ("test_requests_total", 42.0),
        ("2 * 3", 6.0),
    ],
)
async def test_instant_queries(prom: PrometheusServer, query: str, expected: float) -> None:
    assert await read(prom, query) == expected


async def test_histogram_quantile_agrees_with_prometheus(prom: PrometheusServer) -> None:
    """Our histogram_quantile over the exporter's buckets equals PromQL's own answer."""
    async with httpx.AsyncClient() as client:
        body = (await client.get(prom.exporter_url)).text
    (point,) = select(
        parse_exposition(body, "text/plain"), Selector.build("test_latency_seconds", {}, {})
    ).series.values()
    for q in (0.1, 0.5, 0.9, 0.95, 0.99):
        ours = histogram_quantile(q, point.buckets)
        theirs = await read(prom, f"histogram_quantile({q}, test_latency_seconds_bucket)")
        assert ours == pytest.approx(theirs, rel=1e-9), q


async def test_several_series_is_an_error_that_says_to_aggregate(prom: PrometheusServer) -> None:
    with pytest.raises(PermanentSourceError, match=r"returned 2 series.*sum\(\.\.\.\)"):
        await read(prom, "test_queue_depth")


async def test_empty_result_follows_on_empty(prom: PrometheusServer) -> None:
    with pytest.raises(EmptyResultError, match="no series"):
        await read(prom, 'test_queue_depth{queue="none"}')
    assert await read(prom, 'test_queue_depth{queue="none"}', on_empty="zero") == 0.0


async def test_nan_follows_on_empty(prom: PrometheusServer) -> None:
    with pytest.raises(EmptyResultError, match="NaN"):
        await read(prom, "sum(test_queue_depth) * 0 / 0")
    assert await read(prom, "scalar(vector(0)) / 0 * 0", on_empty="zero") == 0.0


async def test_infinity_is_refused(prom: PrometheusServer) -> None:
    with pytest.raises(TemporarySourceError, match="not a finite number"):
        await read(prom, "sum(test_queue_depth) / 0")


async def test_bad_query_passes_on_prometheus_message(prom: PrometheusServer) -> None:
    with pytest.raises(PermanentSourceError, match=r"kv: Prometheus error \(bad_data\): .*parse"):
        await read(prom, "sum(")


async def test_range_vector_is_refused(prom: PrometheusServer) -> None:
    with pytest.raises(PermanentSourceError, match="range vector"):
        await read(prom, "test_queue_depth[1m]")


async def test_wrong_or_missing_credentials(prom: PrometheusServer, monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(PermanentSourceError, match=r"HTTP 401.*credentials") as info:
        await read(prom, "sum(test_queue_depth)")
    assert "wrong" not in str(info.value)
    src = build_source(PromQLSource(url=prom.url, query="1"), name="kv")
    with pytest.raises(PermanentSourceError, match="401"):
        await src.read()
    await src.aclose()
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(PermanentSourceError, match=f"basic_auth.password.*{PASSWORD_ENV}"):
        await read(prom, "1")


async def test_bearer_token_from_a_credentials_file(tmp_path, monkeypatch) -> None:
    (tmp_path / "prom-token").write_text("tok-123\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    answer = json.dumps(
        {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3.5"]}}
    )
    with serving(api__v1__query=Reply(answer, content_type="application/json")) as srv:
        src = build_source(
            PromQLSource(url=srv.url(""), query="up", bearer_token=SecretRef(file="prom-token")),
            name="kv",
        )
        assert await src.read() == 3.5
        assert srv.requests[-1].headers["authorization"] == "Bearer tok-123"
        assert srv.requests[-1].query == "query=up"
        await src.aclose()


@pytest.mark.parametrize("text", NOT_WRITTEN + PADDED)
async def test_a_value_prometheus_never_writes_is_a_failed_read(text: str) -> None:
    # float() read each of these as a number ("1_000" as 1000, an Arabic-Indic 3 as 3).
    answer = json.dumps(
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, text]}]},
        }
    )
    with serving(api__v1__query=Reply(answer, content_type="application/json")) as srv:
        error = await refused(build_source(PromQLSource(url=srv.url(""), query="up"), name="kv"))
    assert str(error) == f"kv: vector sample value {text!r} is not a number"


async def test_server_down_slow_dropped_then_back() -> None:
    port = free_port()
    src = build_source(
        PromQLSource(url=f"http://127.0.0.1:{port}", query="1", timeout=0.3), name="kv"
    )
    with pytest.raises(TemporarySourceError, match="cannot connect"):
        await src.read()
    await src.aclose()
    ok = json.dumps(
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "2"]}]},
        }
    )
    with serving(api__v1__query=Reply(mode="stall")) as srv:
        src = build_source(PromQLSource(url=srv.url(""), query="1", timeout=0.3), name="kv")
        with pytest.raises(TemporarySourceError, match=r"in time|timeout"):
            await src.read()
        srv.routes["/api/v1/query"] = Reply(ok, mode="drop", content_type="application/json")
        with pytest.raises(TemporarySourceError, match="dropped"):
            await src.read()
        srv.routes["/api/v1/query"] = Reply(
            json.dumps({"status": "error", "errorType": "unavailable", "error": "too busy"}),
            status=503,
            content_type="application/json",
        )
        with pytest.raises(TemporarySourceError, match=r"unavailable.*too busy"):
            await src.read()
        srv.routes["/api/v1/query"] = Reply("<html>gateway</html>", status=502)
        with pytest.raises(TemporarySourceError, match="502"):
            await src.read()
        srv.routes["/api/v1/query"] = Reply(ok, content_type="application/json")
        assert await src.read() == 2.0
        await src.aclose()


# --- the response parser, fuzzed ----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
sample_values = st.one_of(st.text(max_size=6), st.floats().map(repr), json_values)
responses = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"status": st.sampled_from(["success", "error", "weird"]), "data": json_values}
    ),
    st.fixed_dictionaries(
        {
            "status": st.just("success"),
            "data": st.fixed_dictionaries(
                {
                    "resultType": st.sampled_from(
                        ["vector", "scalar", "matrix", "string", "other"]
                    ),
                    "result": st.one_of(
                        json_values,
                        st.lists(
                            st.fixed_dictionaries(
                                {
                                    "metric": json_values,
                                    "value": st.lists(sample_values, max_size=3),
                                }
                            ),
                            max_size=3,
                        ),
                        st.lists(sample_values, max_size=3),
                    ),
                }
            ),
        }
    ),
    st.fixed_dictionaries(
        {"status": st.just("error"), "errorType": json_values, "error": json_values}
    ),
)


@given(responses)
def test_parser_gives_a_true_number_or_a_typed_error(body) -> None:
    try:
        value = parse_query_response(body)
    except QueryResponseError:
        return
    if value is None:  # only an empty vector is "no data"
        assert body["data"]["resultType"] == "vector" and body["data"]["result"] == []
        return
    data = body["data"]
    pair = data["result"] if data["resultType"] == "scalar" else data["result"][0]["value"]
    assert isinstance(pair[1], str)
    expected = float(pair[1])
    assert value == expected or (math.isnan(value) and math.isnan(expected))


@settings(max_examples=40)
@given(responses, st.sampled_from([200, 400, 422, 503]))
def test_source_turns_any_answer_into_a_number_or_source_error(body, status) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(body).encode())

    async def run() -> None:
        src = PromQLQuerySource(
            PromQLSource(url="http://prom", query="q"),
            name="kv",
            transport=httpx.MockTransport(handler),
        )
        try:
            value = await src.read()
            assert math.isfinite(value)
        except SourceError:
            pass
        finally:
            await src.aclose()

    anyio.run(run)


@given(st.binary(max_size=50))
def test_non_json_answers_are_typed_errors(raw: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=raw)

    async def run() -> None:
        src = PromQLQuerySource(
            PromQLSource(url="http://prom", query="q"),
            name="kv",
            transport=httpx.MockTransport(handler),
        )
        try:
            assert math.isfinite(await src.read())
        except SourceError:
            pass
        finally:
            await src.aclose()

    anyio.run(run)


@pytest.mark.parametrize(
    ("fields", "query"),
    [
        ({"metric": "vllm:num_requests_waiting"}, "sum(vllm:num_requests_waiting)"),
        (
            {"metric": "vllm:num_requests_running", "aggregate": "max"},
            "max(vllm:num_requests_running)",
        ),
        (
            {
                "metric": "vllm:kv_cache_usage_perc",
                "aggregate": "avg",
                "labels_regex": {"engine": "0|1"},
            },
            'avg(vllm:kv_cache_usage_perc{engine=~"0|1"})',
        ),
        (
            {"metric": "vllm:num_requests_waiting", "labels": {"engine": "1"}, "aggregate": "min"},
            'min(vllm:num_requests_waiting{engine="1"})',
        ),
        (
            {
                "metric": "vllm:num_requests_waiting",
                "labels_regex": {"model_name": "meta"},
                "on_empty": "zero",
            },
            'sum(vllm:num_requests_waiting{model_name=~"meta"}) or vector(0)',
        ),
        (
            {"metric": "vllm:num_requests_waiting", "labels": {"absent": ""}},
            'sum(vllm:num_requests_waiting{absent=""})',
        ),
    ],
)
async def test_scrape_matching_agrees_with_promql(prom: PrometheusServer, fields, query) -> None:
    """Our label matching and aggregation over the exporter's vLLM exposition give what
    PromQL gives over the same series in a real Prometheus."""
    from autoscaler.policy.model import PrometheusSource

    src = build_source(PrometheusSource(urls=(prom.exporter_url,), **fields), name="waiting")
    try:
        ours = await src.read()
    finally:
        await src.aclose()
    assert ours == pytest.approx(await read(prom, query))


async def test_vllm_ttft_quantile_agrees_with_promql(prom: PrometheusServer) -> None:
    async with httpx.AsyncClient() as client:
        body = (await client.get(prom.exporter_url)).text
    from autoscaler.sources.exposition import merge_histograms

    selection = select(
        parse_exposition(body, "text/plain", "vllm:time_to_first_token_seconds"),
        Selector.build("vllm:time_to_first_token_seconds", {}, {}),
    )
    merged = merge_histograms(list(selection.series.values()), "ttft")
    for q in (0.5, 0.9, 0.99):
        theirs = await read(
            prom, f"histogram_quantile({q}, sum by (le) (vllm:time_to_first_token_seconds_bucket))"
        )
        assert histogram_quantile(q, merged.buckets) == pytest.approx(theirs, rel=1e-9)
