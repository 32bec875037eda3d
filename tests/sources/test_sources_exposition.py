"""Exposition parsing and the interval arithmetic, on real vLLM and LiteLLM output.

The fixtures are built with prometheus-client exactly as vLLM and LiteLLM build theirs
(`expositions.py`); `fixtures/vllm_metrics.txt` is a committed 544-line vLLM /metrics body.
Hypothesis checks that generated expositions read back exactly and that malformed ones give
ExpositionError, never another exception and never a number.
"""

from __future__ import annotations

import math
import re
import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from autoscaler.sources.exposition import (
    ExpositionError,
    HistogramPoint,
    Selector,
    aggregate,
    counter_increase,
    histogram_increase,
    histogram_mean,
    histogram_quantile,
    merge_histograms,
    parse_exposition,
    select,
)
from tests.sources.expositions import (
    FIXTURES,
    MODEL,
    TTFT_BUCKETS,
    litellm_exposition,
    vllm_exposition,
)
from tests.sources.spellings import NOT_WRITTEN, PADDED

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
FIXTURE = (FIXTURES / "vllm_metrics.txt").read_text()


def pick(text: str, metric: str, content_type: str = TEXT, **labels: str):
    selection = select(
        parse_exposition(text, content_type, metric), Selector.build(metric, labels, {})
    )
    assert selection is not None
    return selection


def test_fixture_is_a_500_line_vllm_exposition_with_created_lines() -> None:
    lines = FIXTURE.splitlines()
    assert len(lines) >= 500
    assert any("_created{" in line for line in lines)
    assert {'engine="0"', 'engine="1"'} <= {
        part for line in lines for part in line.split(",") if part.startswith('engine="')
    }


def test_fixture_is_what_the_generator_builds() -> None:
    # The committed fixture must stay the generator's output (values, not timestamps).
    def strip(text: str) -> list[str]:
        return [
            line
            for line in text.splitlines()
            if "_created" not in line
            and not line.startswith(("python_", "process_"))
            and "python_" not in line
            and "process_" not in line
        ]

    assert strip(FIXTURE) == strip(vllm_exposition())


@pytest.mark.parametrize("content_type", [TEXT, OPENMETRICS])
def test_vllm_gauges(content_type: str) -> None:
    text = FIXTURE if content_type == TEXT else vllm_exposition(openmetrics=True)
    waiting = pick(text, "vllm:num_requests_waiting", content_type)
    assert waiting.kind == "gauge"
    assert waiting.series == {
        (("engine", "0"), ("model_name", MODEL)): 3.0,
        (("engine", "1"), ("model_name", MODEL)): 5.0,
    }
    running = pick(text, "vllm:num_requests_running", content_type, engine="1")
    assert list(running.series.values()) == [4.0]
    kv = pick(text, "vllm:kv_cache_usage_perc", content_type, model_name=MODEL)
    assert sorted(kv.series.values()) == [0.25, 0.5]


@pytest.mark.parametrize("content_type", [TEXT, OPENMETRICS])
@pytest.mark.parametrize("name", ["vllm:prompt_tokens", "vllm:prompt_tokens_total"])
def test_vllm_counters_ignore_created(content_type: str, name: str) -> None:
    text = FIXTURE if content_type == TEXT else vllm_exposition(openmetrics=True)
    tokens = pick(text, name, content_type)
    assert tokens.kind == "counter"
    assert sorted(tokens.series.values()) == [1000.0, 3000.0]  # no 1.7e9 `_created` values


@pytest.mark.parametrize("content_type", [TEXT, OPENMETRICS])
def test_vllm_ttft_histogram(content_type: str) -> None:
    text = FIXTURE if content_type == TEXT else vllm_exposition(openmetrics=True)
    ttft = pick(text, "vllm:time_to_first_token_seconds", content_type, engine="0")
    assert ttft.kind == "histogram"
    (point,) = ttft.series.values()
    assert isinstance(point, HistogramPoint)
    bounds = [le for le, _ in point.buckets]
    assert bounds == [*TTFT_BUCKETS, math.inf]
    cumulative = dict(point.buckets)
    # engine 0 observed 0.02 0.03 0.05 0.2 0.3 0.7 1.5
    assert cumulative[0.02] == 1 and cumulative[0.1] == 3 and cumulative[1.0] == 6
    assert cumulative[math.inf] == 7 and point.count == 7
    assert point.sum == pytest.approx(2.8)


def test_regex_matchers_are_fully_anchored() -> None:
    metric = "vllm:num_requests_waiting"
    families = parse_exposition(FIXTURE, TEXT)
    assert len(select(families, Selector.build(metric, {}, {"engine": "0|1"})).series) == 2
    assert len(select(families, Selector.build(metric, {}, {"engine": "1"})).series) == 1
    # "meta" alone would match with re.search; anchored it does not.
    assert select(families, Selector.build(metric, {}, {"model_name": "meta"})).series == {}
    assert len(select(families, Selector.build(metric, {}, {"model_name": "meta-.*"})).series) == 2
    # A missing label equals "" as in PromQL.
    assert len(select(families, Selector.build(metric, {"absent": ""}, {})).series) == 2


def test_absent_family_is_none_and_bad_regex_is_an_error() -> None:
    assert select(parse_exposition(FIXTURE, TEXT), Selector.build("vllm:nope", {}, {})) is None
    with pytest.raises(ExpositionError, match=r"labels_regex\.engine"):
        Selector.build("m", {}, {"engine": "("})


def test_litellm_counters_by_model() -> None:
    text = litellm_exposition({"gpt-4o": 10, "llama-3-8b": 4})
    for name in ("litellm_requests_metric_total", "litellm_proxy_total_requests_metric_total"):
        selection = pick(text, name)
        assert selection.kind == "counter"
        assert sorted(selection.series.values()) == [4.0, 10.0]
    by_model = pick(text, "litellm_requests_metric_total", model="gpt-4o")
    assert list(by_model.series.values()) == [10.0]
    latency = pick(text, "litellm_request_total_latency_metric", model="llama-3-8b")
    (point,) = latency.series.values()
    assert point.count == 2
    assert pick(text, "litellm_in_flight_requests").series == {(): 3.0}


# --- histogram_quantile, checked against what PromQL answers --------------------------------


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [(1.0, 10), (2.0, 20), (math.inf, 20)], 1.0),
        (0.75, [(1.0, 10), (2.0, 20), (math.inf, 20)], 1.5),
        (0.25, [(1.0, 10), (2.0, 20), (math.inf, 20)], 0.5),
        (0.9, [(1.0, 5), (math.inf, 10)], 1.0),  # in the +Inf bucket: highest finite bound
        (0.5, [(-1.0, 5), (math.inf, 5)], -1.0),  # first bound <= 0
        (0.5, [(0.25, 0), (0.5, 3), (0.75, 4), (math.inf, 4)], 0.25 + 0.25 * 2 / 3),
        (1.0, [(1.0, 10), (2.0, 20), (math.inf, 20)], 2.0),
        (0.0, [(1.0, 10), (2.0, 20), (math.inf, 20)], 0.0),
    ],
)
def test_histogram_quantile_table(q: float, buckets, expected: float) -> None:
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


def test_histogram_quantile_without_observations_is_none() -> None:
    assert histogram_quantile(0.5, [(1.0, 0), (math.inf, 0)]) is None
    with pytest.raises(ExpositionError):
        histogram_quantile(1.5, [(1.0, 1), (math.inf, 1)])
    with pytest.raises(ExpositionError):
        histogram_quantile(0.5, [(1.0, 1)])


def test_interval_increases_and_resets() -> None:
    before = HistogramPoint(((1.0, 2), (math.inf, 4)), 5.0, 4)
    after = HistogramPoint(((1.0, 5), (math.inf, 8)), 9.0, 8)
    delta = histogram_increase(before, after)
    assert delta == HistogramPoint(((1.0, 3), (math.inf, 4)), 4.0, 4)
    assert histogram_mean(delta, "h") == 1.0
    restarted = HistogramPoint(((1.0, 1), (math.inf, 1)), 0.5, 1)
    assert histogram_increase(before, restarted) == restarted
    assert counter_increase(100, 130) == 30
    assert counter_increase(100, 20) == 20  # reset: the new value is the increase
    merged = merge_histograms([delta, delta], "h")
    assert merged.buckets == ((1.0, 6), (math.inf, 8)) and merged.count == 8
    with pytest.raises(ExpositionError, match="different buckets"):
        merge_histograms([delta, HistogramPoint(((2.0, 1), (math.inf, 1)), 1.0, 1)], "h")


def test_aggregate_nan_is_nan_not_a_guess() -> None:
    assert aggregate([1.0, 2.0, 6.0], "avg") == 3.0
    assert aggregate([], "sum") is None
    assert math.isnan(aggregate([1.0, math.nan], "max"))


# --- malformed expositions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('vllm:num_requests_waiting{engine="0"} 1 2 3\n', "line 1"),
        ('vllm:num_requests_waiting{engine="0" 1\n', "malformed"),
        ('vllm:num_requests_waiting{engine="0"} many\n', "malformed"),
        ('vllm:num_requests_waiting{engine="0",engine="1"} 1\n', "malformed"),
        (
            'vllm:num_requests_waiting{engine="0"} 1\nvllm:num_requests_waiting{engine="0"} 2\n',
            "duplicate series",
        ),
    ],
)
def test_malformed_gauge_lines(body: str, match: str) -> None:
    with pytest.raises(ExpositionError, match=match):
        pick(body, "vllm:num_requests_waiting")


HIST = "# TYPE h histogram\n"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (HIST + 'h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', r"\+Inf"),
        (HIST + 'h_bucket{le="x"} 1\nh_bucket{le="+Inf"} 1\n', "not a number"),
        (HIST + 'h_bucket{le="1"} 5\nh_bucket{le="+Inf"} 3\n', "fewer"),
        (HIST + 'h_bucket{le="1"} 1\nh_bucket{le="1.0"} 1\nh_bucket{le="+Inf"} 1\n', "duplicate"),
        (HIST + 'h_bucket{le="1"} NaN\nh_bucket{le="+Inf"} 1\n', "finite"),
        ("# TYPE c_total counter\nc_total -3\n", "negative"),
        ("# TYPE c_total counter\nc_total +Inf\n", "finite"),
        ("# TYPE c counter\nc_total 1\n# TYPE c gauge\nc 1\n", "declared as"),
        ("# TYPE h info\nh_info 1\n", "supported"),
    ],
)
def test_malformed_families(body: str, match: str) -> None:
    name = "c" if body.startswith("# TYPE c") else "h"
    with pytest.raises(ExpositionError, match=match):
        pick(body, name)


@pytest.mark.parametrize("content_type", [TEXT, OPENMETRICS])
@pytest.mark.parametrize("text", NOT_WRITTEN)
@pytest.mark.parametrize("line", ['q{{i="a"}} {}', "q {}", '{{"q", i="a"}} {}', "q {} 1700000000"])
def test_a_sample_value_no_exposition_writes_is_an_error(
    content_type: str, text: str, line: str
) -> None:
    # Both parsers read a value with float(): an Arabic-Indic 3 read as 3, "+nan" as NaN.
    body = f"# TYPE q gauge\n{line.format(text)}\n" + (
        "# EOF\n" if content_type == OPENMETRICS else ""
    )
    with pytest.raises(ExpositionError, match=r"line 2 .*: value (.*) is not a number") as info:
        pick(body, "q", content_type)
    assert f"value {text!r} is not a number" in str(info.value)


@pytest.mark.parametrize("label", ["le", "quantile"])
@pytest.mark.parametrize("text", NOT_WRITTEN + PADDED)
def test_a_bound_label_no_exposition_writes_is_an_error(label: str, text: str) -> None:
    kind, name = ("histogram", "h_bucket") if label == "le" else ("summary", "h")
    body = f'# TYPE h {kind}\n{name}{{{label}="{_escape(text)}"}} 1\nh_sum 1\nh_count 1\n'
    if label == "le":
        body += 'h_bucket{le="+Inf"} 1\n'
    with pytest.raises(ExpositionError, match=f"{label}={re.escape(repr(text))} is not a number"):
        pick(body, "h")


def test_openmetrics_is_parsed_strictly() -> None:
    # Classic text served as OpenMetrics lacks `# EOF`: the OpenMetrics parser refuses it.
    with pytest.raises(ExpositionError, match="OpenMetrics"):
        parse_exposition(FIXTURE, OPENMETRICS)


# --- Hypothesis: generated expositions read back exactly -------------------------------------

label_values = st.text(
    alphabet=string.ascii_letters + string.digits + ' -_/.:"\\{}\n,=', max_size=12
)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@given(
    series=st.dictionaries(label_values, finite, min_size=1, max_size=8),
    how=st.sampled_from(["sum", "avg", "max", "min"]),
    noise=st.booleans(),
)
def test_generated_gauges_read_back_exactly(
    series: dict[str, float], how: str, noise: bool
) -> None:
    lines = ["# HELP q_depth queue depth", "# TYPE q_depth gauge"]
    lines += [f'q_depth{{queue="{_escape(k)}",pod="p"}} {v!r}' for k, v in series.items()]
    if noise:
        lines = ["# TYPE other_total counter", "other_total 5", *lines, "q_depth_total 99"]
    text = "\n".join(lines) + "\n"
    selection = pick(text, "q_depth")
    assert {dict(k)["queue"]: v for k, v in selection.series.items()} == series
    values = list(series.values())
    expected = aggregate(values, how)
    got = aggregate(list(selection.series.values()), how)
    assert got == expected or (math.isinf(expected) and got == expected)


@given(
    counts=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=8),
    q=st.floats(min_value=0, max_value=1),
)
def test_generated_histograms_match_the_definition(counts: list[int], q: float) -> None:
    bounds = [0.1 * (i + 1) for i in range(len(counts))]
    cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]
    lines = ["# TYPE h histogram"]
    lines += [f'h_bucket{{le="{b!r}"}} {c}' for b, c in zip(bounds, cumulative, strict=True)]
    lines += [f'h_bucket{{le="+Inf"}} {cumulative[-1]}', f"h_count {cumulative[-1]}", "h_sum 1.5"]
    (point,) = pick("\n".join(lines) + "\n", "h").series.values()
    value = histogram_quantile(q, point.buckets)
    total = cumulative[-1]
    if total == 0:
        assert value is None
        return
    assert value is not None
    # The answer lies in the bucket holding rank q*total, i.e. between its bounds.
    rank = q * total
    index = next(i for i, c in enumerate(cumulative) if c >= rank)
    lower = 0.0 if index == 0 else bounds[index - 1]
    assert lower - 1e-9 <= value <= bounds[index] + 1e-9


# --- Hypothesis: malformed input is an ExpositionError, never a crash or a number -----------


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    for content_type in (TEXT, OPENMETRICS):
        try:
            families = parse_exposition(text, content_type, "m")
            select(families, Selector.build("m", {}, {}))
        except ExpositionError:
            pass


bad_values = st.text(alphabet=string.ascii_letters + "!@$%^&*", min_size=1, max_size=8).filter(
    lambda s: s.lower() not in {"nan", "inf", "infinity", "e"}
)


@given(
    good=st.lists(st.integers(0, 100), min_size=1, max_size=5),
    position=st.integers(0, 4),
    corruption=st.one_of(
        bad_values.map(lambda bad: ("value", bad)),
        st.sampled_from(
            [("drop_brace", ""), ("extra_tokens", " 1 2"), ("dup_label", ""), ("open_quote", "")]
        ),
    ),
)
def test_corrupted_lines_of_the_selected_metric_are_errors(good, position, corruption) -> None:
    lines = [f'q{{i="{i}"}} {v}' for i, v in enumerate(good)]
    index = position % len(lines)
    kind, extra = corruption
    line = lines[index]
    if kind == "value":
        line = f'q{{i="{index}"}} {extra}'
    elif kind == "drop_brace":
        line = line.replace("}", "", 1)
    elif kind == "extra_tokens":
        line = line + extra
    elif kind == "dup_label":
        line = line.replace("{", f'{{i="{index}",', 1)
    else:
        line = line.replace('"', "", 1)
    lines[index] = line
    with pytest.raises(ExpositionError):
        pick("# TYPE q gauge\n" + "\n".join(lines) + "\n", "q")


@given(st.binary(max_size=64), st.integers(0, 400))
def test_garbage_spliced_into_the_fixture_never_crashes(junk: bytes, at: int) -> None:
    lines = FIXTURE.splitlines()
    assume(lines)
    lines.insert(at % len(lines), junk.decode("latin-1"))
    try:
        sel = select(
            parse_exposition("\n".join(lines), TEXT, "vllm:num_requests_waiting"),
            Selector.build("vllm:num_requests_waiting", {}, {}),
        )
    except ExpositionError:
        return
    # When the junk did not break the format, the numbers are still the true ones.
    assert sel is not None
    assert sorted(sel.series.values()) == [3.0, 5.0] or len(sel.series) > 2
