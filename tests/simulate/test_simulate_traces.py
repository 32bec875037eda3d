"""Trace loading: the real shared files, layouts, column mapping, errors, generated arrivals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autoscaler.simulate.traces import (
    ColumnMap,
    RateTrace,
    RequestTrace,
    TraceError,
    generate_arrivals,
    load_trace,
    requests_from_rates,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "traces"
MOONCAKE = DATA / "mooncake_conversation_1h.csv"
SERVEGEN = DATA / "servegen_language_m_mid_14d_rate10min.csv"


def head(path: Path, lines: int, tmp_path: Path) -> Path:
    out = tmp_path / f"head_{path.name}"
    with path.open() as src:
        out.write_text("".join(next(src) for _ in range(lines)))
    return out


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_mooncake_file_loads_as_it_is(tmp_path: Path) -> None:
    trace = load_trace(str(head(MOONCAKE, 501, tmp_path)))
    assert isinstance(trace, RequestTrace)
    assert trace.layout == "mooncake"
    assert len(trace) == 500
    assert trace.arrival_s[0] == 0.0 and np.all(np.diff(trace.arrival_s) >= 0)
    assert trace.input_tokens[0] == 6758 and trace.output_tokens[0] == 500  # first data row


def test_whole_mooncake_hour() -> None:
    trace = load_trace(str(MOONCAKE))
    assert isinstance(trace, RequestTrace)
    assert len(trace) == 12031
    assert trace.duration_s == pytest.approx(3536.999)


def test_servegen_rate_trace_loads(tmp_path: Path) -> None:
    trace = load_trace(str(SERVEGEN))
    assert isinstance(trace, RateTrace)
    assert trace.rate_rps.size == 2016
    assert trace.duration_s == pytest.approx(14 * 86400)
    assert np.isnan(trace.rate_cv).sum() > 0  # windows with no cv: Poisson
    assert trace.rate_rps[0] == pytest.approx(986.565)


def test_azure_layout_with_iso_times(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "azure.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.9951690,396,109\n"
        "2023-11-16 18:15:47.0000000,879,25\n",
    )
    trace = load_trace(path)
    assert isinstance(trace, RequestTrace)
    assert trace.layout == "azure"
    assert trace.arrival_s.tolist() == pytest.approx([0.0, 0.31941, 4.314579])
    assert trace.input_tokens.tolist() == [374, 879, 396]  # sorted by arrival
    assert trace.epoch_offset == pytest.approx(1700158546.68059)


@pytest.mark.parametrize(
    ("name", "text", "layout", "arrivals", "inputs", "outputs"),
    [
        (  # BurstGPT: seconds from the start, failed requests with 0 response tokens kept
            "burstgpt.csv",
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
            "5,ChatGPT,472,18,490,Conversation log\n"
            "45,GPT-4,1087,0,1087,API log\n"
            "118.5,ChatGPT,417,276,693,Conversation log\n",
            "burstgpt",
            [0.0, 40.0, 113.5],
            [472, 1087, 417],
            [18, 0, 276],
        ),
        (  # Mooncake's release (FAST25-release/traces/*.jsonl): one object per request
            "conversation_trace.jsonl",
            '{"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1, 2]}\n'
            "\n"
            '{"timestamp": 1500, "input_length": 7322, "output_length": 490, "hash_ids": [0, 3]}\n'
            '{"timestamp": 750, "input_length": 100, "output_length": 5, "hash_ids": []}\n',
            "mooncake",
            [0.0, 0.75, 1.5],
            [6758, 100, 7322],
            [500, 5, 490],
        ),
    ],
)
def test_published_forms_load_as_they_are(
    tmp_path: Path,
    name: str,
    text: str,
    layout: str,
    arrivals: list[float],
    inputs: list[int],
    outputs: list[int],
) -> None:
    trace = load_trace(write(tmp_path, name, text))
    assert isinstance(trace, RequestTrace)
    assert trace.layout == layout
    assert trace.arrival_s.tolist() == arrivals
    assert trace.input_tokens.tolist() == inputs
    assert trace.output_tokens.tolist() == outputs


def test_the_shared_mooncake_hour_reads_the_same_as_json_lines(tmp_path: Path) -> None:
    header, *rows = MOONCAKE.read_text().splitlines()
    keys = header.split(",")
    lines = (
        json.dumps({k: int(v) for k, v in zip(keys, row.split(","), strict=True)}) for row in rows
    )
    jsonl = tmp_path / "hour.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    as_csv, as_jsonl = load_trace(str(MOONCAKE)), load_trace(str(jsonl))
    assert isinstance(as_csv, RequestTrace) and isinstance(as_jsonl, RequestTrace)
    assert np.array_equal(as_csv.arrival_s, as_jsonl.arrival_s)
    assert np.array_equal(as_csv.input_tokens, as_jsonl.input_tokens)
    assert np.array_equal(as_csv.output_tokens, as_jsonl.output_tokens)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"timestamp": 0, "input_length": 1, "output_length": 2}\n{"timestamp": 5,\n',
            "x.jsonl:2: not a JSON object",
        ),
        (
            '{"timestamp": 0, "input_length": 1, "output_length": 2}\n[1, 2]\n',
            "x.jsonl:2: not a JSON object (a list)",
        ),
        (
            '{"timestamp": 0, "input_length": 1, "output_length": 2}\n\n'
            '{"timestamp": 9, "output_length": 2}\n',
            "x.jsonl:3: column 'input_length' has no value",
        ),
        (
            '{"timestamp": 0, "input_length": true, "output_length": 2}\n',
            "x.jsonl:1: column 'input_length': 'true' is not a number",
        ),
        (
            '{"timestamp": 0, "input_length": -3, "output_length": 2}\n',
            "x.jsonl:1: column 'input_length': '-3' is not a token count",
        ),
        ('{"when": 0, "in": 1, "out": 2}\n', "x.jsonl:1: unrecognised header (when, in, out)"),
        ('{"timestamp": NaN, "input_length": 1, "output_length": 2}\n', "is not a finite number"),
    ],
)
def test_bad_json_lines_name_file_line_and_fault(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "x.jsonl", text)
    with pytest.raises(TraceError) as err:
        load_trace(path)
    assert message in str(err.value)


def test_column_mapping_with_units(tmp_path: Path) -> None:
    text = "when,prompt,completion,other\n1500,10,20,x\n500,30,40,y\n"
    path = write(tmp_path, "mine.csv", text)
    ms = load_trace(path, ColumnMap("when", "prompt", "completion", "ms"))
    assert isinstance(ms, RequestTrace)
    assert ms.arrival_s.tolist() == [0.0, 1.0]
    assert ms.input_tokens.tolist() == [30, 10]
    seconds = load_trace(path, ColumnMap("when", "prompt", "completion", "s"))
    assert isinstance(seconds, RequestTrace)
    assert seconds.arrival_s.tolist() == [0.0, 1000.0]
    # a partial mapping over a known layout: only the time column renamed
    renamed = write(tmp_path, "renamed.csv", "t_ms,input_length,output_length\n0,1,2\n250,3,4\n")
    partial = load_trace(renamed, ColumnMap(time="t_ms"))
    assert isinstance(partial, RequestTrace)
    assert partial.arrival_s.tolist() == [0.0, 0.25]


def test_canonical_layout(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "arrival_s,input_tokens,output_tokens\n0.5,1,2\n\n2.5,3,4\n")
    trace = load_trace(path)
    assert isinstance(trace, RequestTrace)
    assert trace.layout == "canonical" and len(trace) == 2


@pytest.mark.parametrize(
    ("text", "columns", "message"),
    [
        (
            "arrival_s,input_tokens,output_tokens\n0,1,2\n1,x,2\n",
            None,
            "x.csv:3: column 'input_tokens': 'x' is not a number",
        ),
        ("arrival_s,input_tokens,output_tokens\n0,1,2\n1,2\n", None, "x.csv:3: 2 fields"),
        (
            "arrival_s,input_tokens,output_tokens\n0,-1,2\n",
            None,
            "x.csv:2: column 'input_tokens': '-1' is not a token count",
        ),
        ("arrival_s,input_tokens,output_tokens\n0,1.5,2\n", None, "is not a token count"),
        ("a,b,c\n0,1,2\n", None, "x.csv:1: unrecognised header (a, b, c)"),
        ("a,b,c\n0,1,2\n", ColumnMap("a", "b", "nope"), "x.csv:1: no output-token column 'nope'"),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,2\n",
            None,
            "x.csv:2: column 'TIMESTAMP': 'yesterday' is not an ISO date-time",
        ),
        ("arrival_s,input_tokens,output_tokens\n", None, "no requests"),
        ("", None, "x.csv:1: the file is empty"),
        (
            "window_start_s,rate_rps,rate_cv\n0,1,1\n0,2,1\n",
            None,
            "x.csv:3: column 'window_start_s': 0 does not increase",
        ),
        ("window_start_s,rate_rps\n0,-1\n", None, "x.csv:2: column 'rate_rps': -1.0 is negative"),
        (
            "window_start_s,rate_rps,rate_cv\n0,1,0\n",
            None,
            "x.csv:2: column 'rate_cv': 0 must be > 0",
        ),
    ],
)
def test_bad_files_name_file_line_and_fault(
    tmp_path: Path, text: str, columns: ColumnMap | None, message: str
) -> None:
    path = write(tmp_path, "x.csv", text)
    with pytest.raises(TraceError) as err:
        load_trace(path, columns)
    assert message in str(err.value)


def test_missing_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        load_trace(str(tmp_path / "nope.csv"))


def rate_trace(rate: float, cv: float, windows: int = 4, width: float = 600.0) -> RateTrace:
    return RateTrace(
        np.arange(windows) * width,
        np.full(windows, width),
        np.full(windows, rate),
        np.full(windows, cv),
        "r",
    )


@pytest.mark.parametrize("cv", [float("nan"), 1.0, 0.5, 3.0])
def test_generated_arrivals_have_the_rate_and_variability(cv: float) -> None:
    trace = rate_trace(5.0, cv, windows=20)
    arrivals = generate_arrivals(trace, np.random.default_rng(1))
    assert np.all(np.diff(arrivals) >= 0)
    assert arrivals.size == pytest.approx(5.0 * 20 * 600, rel=0.1 if cv != 3.0 else 0.25)
    gaps = np.diff(arrivals)
    want = 1.0 if np.isnan(cv) else cv
    assert gaps.std() / gaps.mean() == pytest.approx(want, rel=0.2)


def test_zero_rate_windows_have_no_arrivals() -> None:
    trace = RateTrace(
        np.array([0.0, 600.0]),
        np.array([600.0, 600.0]),
        np.array([0.0, 2.0]),
        np.array([np.nan, np.nan]),
        "r",
    )
    arrivals = generate_arrivals(trace, np.random.default_rng(0))
    assert arrivals.min() >= 600.0


def test_scaling_down_thins_the_burstiness() -> None:
    trace = rate_trace(1000.0, 6.0)
    scaled = trace.scaled(0.01)
    assert scaled.rate_rps[0] == pytest.approx(10.0)
    assert scaled.rate_cv[0] == pytest.approx(np.sqrt(0.01 * 36 + 0.99))
    assert trace.scaled(0.01, thin=False).rate_cv[0] == 6.0
    assert trace.scaled(2.0).rate_cv[0] == 6.0


def test_sizes_are_drawn_from_the_sizes_trace_and_seeded(tmp_path: Path) -> None:
    sizes = load_trace(str(head(MOONCAKE, 201, tmp_path)))
    assert isinstance(sizes, RequestTrace)
    trace = rate_trace(2.0, 2.0)
    one = requests_from_rates(trace, sizes, np.random.default_rng(42))
    two = requests_from_rates(trace, sizes, np.random.default_rng(42))
    other = requests_from_rates(trace, sizes, np.random.default_rng(43))
    assert np.array_equal(one.arrival_s, two.arrival_s)
    assert np.array_equal(one.input_tokens, two.input_tokens)
    assert not np.array_equal(one.arrival_s[:50], other.arrival_s[:50])
    pairs = set(zip(sizes.input_tokens.tolist(), sizes.output_tokens.tolist(), strict=True))
    assert set(zip(one.input_tokens.tolist(), one.output_tokens.tolist(), strict=True)) <= pairs


def test_fill_gaps_interpolates_rate_zero_windows_without_cv() -> None:
    trace = RateTrace(
        np.arange(5) * 600.0,
        np.full(5, 600.0),
        np.array([2.0, 0.0, 0.0, 8.0, 0.0]),
        np.array([1.5, np.nan, np.nan, 3.0, 2.0]),  # the last window is idle, not a gap
        "r",
    )
    filled, count = trace.filled_gaps()
    assert count == 2
    assert filled.rate_rps.tolist() == pytest.approx([2.0, 4.0, 6.0, 8.0, 0.0])
    assert filled.rate_cv.tolist() == pytest.approx([1.5, 2.0, 2.5, 3.0, 2.0])
    servegen = load_trace(str(SERVEGEN))
    assert isinstance(servegen, RateTrace)
    whole, gaps = servegen.filled_gaps()
    assert gaps == 84 and (whole.rate_rps > 0).all()


def test_bad_bytes_deep_in_a_long_file_are_a_trace_error(tmp_path: Path) -> None:
    # the file is parsed as it is read: a fault past the first block is still named
    path = tmp_path / "long.csv"
    rows = "".join(f"{i},10,20\n" for i in range(2000))
    path.write_bytes(f"arrival_s,input_tokens,output_tokens\n{rows}".encode() + b"\xff\xfe1,2,3\n")
    with pytest.raises(TraceError, match="not a UTF-8 text"):
        load_trace(str(path))
    jsonl = tmp_path / "long.jsonl"
    lines = "".join(
        f'{{"timestamp": {i}, "input_length": 1, "output_length": 2}}\n' for i in range(500)
    )
    jsonl.write_bytes(lines.encode() + b"\xff\n")
    with pytest.raises(TraceError, match="not a UTF-8 text"):
        load_trace(str(jsonl))
