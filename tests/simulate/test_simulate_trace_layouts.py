"""Published trace layouts as they are downloaded: their headers and time formats, byte order
marks, CRLF line ends, gzip; and the faults that used to be a traceback or a hang (a token
count past int64, a time that stretches the trace over centuries). Every sample is generated
here, in the layout its comment names."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from autoscaler.cli import main
from autoscaler.simulate.traces import ColumnMap, RequestTrace, TraceError, load_trace

ROOT = Path(__file__).resolve().parents[2]

# Azure/AzurePublicDataset AzureLLMInferenceTrace_code_1week.csv (2024): a UTC offset, six
# fractional digits, none on a whole second; the week starts at midnight, not at 0.
AZURE_2024 = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    "2024-05-10 00:00:00+00:00,2162,5\n"
    "2024-05-10 00:00:00.017335+00:00,2399,6\n"
    "2024-05-10 00:00:01.5+00:00,76,0\n"
)
# HPMLL/BurstGPT BurstGPT_1.csv: integer seconds from 0:00 of the first day (mid-trace here),
# failed requests with 0 response tokens
BURSTGPT = (
    "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
    "86405,ChatGPT,472,18,490,Conversation log\n"
    "86445,GPT-4,1087,0,1087,API log\n"
)
# kvcache-ai/Mooncake FAST25-release/traces/*.jsonl: milliseconds
MOONCAKE = (
    '{"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47]}\n'
    '{"timestamp": 3053, "input_length": 6472, "output_length": 26, "hash_ids": [46]}\n'
)


def write(tmp_path: Path, name: str, data: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


@pytest.mark.parametrize(
    ("name", "text", "layout", "arrivals", "outputs"),
    [
        ("azure_1week.csv", AZURE_2024, "azure", [0.0, 0.017335, 1.5], [5, 6, 0]),
        (  # Mutinifni/splitwise-sim generate_trace.py (pandas to_csv): seconds
            "rr_conv_100.csv",
            "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,"
            "token_size\n0,2,0,0.25,1,1020,211\n1,2,0,0.0125,1,88,7\n",
            "splitwise",
            [0.0, 0.2375],
            [7, 211],
        ),
        (  # microsoft/vidur data/processed_traces/splitwise_conv.csv: seconds
            "splitwise_conv.csv",
            "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,374,44\n4.25,396,109\n",
            "vidur",
            [0.0, 4.25],
            [44, 109],
        ),
    ],
)
def test_published_layouts_load_as_they_are(
    tmp_path: Path, name: str, text: str, layout: str, arrivals: list[float], outputs: list[int]
) -> None:
    trace = load_trace(write(tmp_path, name, text))
    assert isinstance(trace, RequestTrace)
    assert trace.layout == layout
    assert trace.arrival_s.tolist() == pytest.approx(arrivals, abs=1e-6)  # epoch float
    assert trace.output_tokens.tolist() == outputs


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bom.csv", b"\xef\xbb\xbf" + BURSTGPT.encode()),  # spreadsheet export
        ("bom.jsonl", b"\xef\xbb\xbf" + MOONCAKE.encode()),
        ("crlf.csv", BURSTGPT.replace("\n", "\r\n").encode()),
        ("crlf.jsonl", MOONCAKE.replace("\n", "\r\n").encode()),
        ("BurstGPT_1.csv.gz", gzip.compress(BURSTGPT.encode())),
        ("trace.jsonl.gz", gzip.compress(MOONCAKE.encode())),
        ("bom.csv.gz", gzip.compress(b"\xef\xbb\xbf" + BURSTGPT.encode())),
        ("no_suffix", gzip.compress(BURSTGPT.encode())),  # gzip is known by its bytes
    ],
)
def test_encodings_and_compression_read_the_same_requests(
    tmp_path: Path, name: str, data: bytes
) -> None:
    trace = load_trace(write(tmp_path, name, data))
    assert isinstance(trace, RequestTrace)
    if "jsonl" in name:
        assert trace.layout == "mooncake"
        assert trace.arrival_s.tolist() == [0.0, 3.053]
    else:
        assert trace.layout == "burstgpt"
        assert trace.arrival_s.tolist() == [0.0, 40.0]
        assert trace.output_tokens.tolist() == [18, 0]


@pytest.mark.parametrize(
    ("name", "data", "columns", "message"),
    [
        (  # was an OverflowError traceback (int64)
            "x.csv",
            "arrival_s,input_tokens,output_tokens\n0,1,2\n1,1,99999999999999999999\n",
            None,
            "x.csv:3: column 'output_tokens': '99999999999999999999' is more tokens than",
        ),
        (  # was a 248 GiB allocation in the aggregated mode
            "x.csv",
            "arrival_s,input_tokens,output_tokens\n0,1000000000000,2\n",
            None,
            "x.csv:2: column 'input_tokens': '1000000000000' is more tokens than",
        ),
        (  # was a simulation of 31,000 idle years (a hang)
            "x.csv",
            "arrival_s,input_tokens,output_tokens\n0,1,2\n5,1,2\n1000000000000,1,2\n",
            None,
            "x.csv:4: column 'arrival_s': '1000000000000' stretches the trace to 11,574,074 days",
        ),
        (  # the earliest row is the odd one: the row that makes the span too long is named
            "x.csv",
            "arrival_s,input_tokens,output_tokens\n1700000000,1,2\n\n3,1,2\n",
            None,
            "x.csv:4: column 'arrival_s': '3' stretches the trace",
        ),
        (  # nanoseconds in a mapped column read as seconds: a clear fault, not a hang
            "x.csv",
            "t,in,out\n1715299200000000000,1,2\n1715299260000000000,1,2\n",
            ColumnMap("t", "in", "out", "s"),
            "x.csv:3: column 't': '1715299260000000000' stretches the trace",
        ),
        (
            "x.json",
            '[{"timestamp": 0, "input_length": 1, "output_length": 2}]\n',
            None,
            "x.json:1: a JSON array",
        ),
        ("x.csv.gz", gzip.compress(BURSTGPT.encode())[:40], None, "x.csv.gz: a damaged gzip file"),
    ],
)
def test_faults_name_file_line_and_fault(
    tmp_path: Path, name: str, data: str | bytes, columns: ColumnMap | None, message: str
) -> None:
    with pytest.raises(TraceError) as err:
        load_trace(write(tmp_path, name, data), columns)
    assert message in str(err.value)


NS = ("1715299200000000000", "1715299260000000000")  # a minute apart, in nanoseconds
US = ("1715299200000000", "1715299260000000")  # and in microseconds


@pytest.mark.parametrize(
    ("column", "unit", "times"),
    [("t_ns", None, NS), ("t_us", None, US), ("t", "ns", NS), ("t", "us", US)],
)
def test_micro_and_nanosecond_times(
    tmp_path: Path, column: str, unit: str | None, times: tuple[str, str]
) -> None:
    text = f"{column},in,out\n{times[0]},1,2\n{times[1]},1,2\n"
    columns = ColumnMap(column, "in", "out", unit)  # type: ignore[arg-type]
    trace = load_trace(write(tmp_path, "x.csv", text), columns)
    assert isinstance(trace, RequestTrace)
    assert trace.duration_s == pytest.approx(60.0)


def test_a_gzipped_week_of_azure_2024_simulates(tmp_path: Path) -> None:
    rows = [
        f"2024-05-10 {h:02d}:{m:02d}:{s:02d}.{h * 7919 % 1000000:06d}+00:00,{500 + s * 10},{s}"
        for h in range(0, 24, 6)
        for m in range(0, 60, 3)
        for s in (0, 17, 41)
    ]
    data = gzip.compress(("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(rows)).encode())
    trace = write(tmp_path, "AzureLLMInferenceTrace_code_1week.csv.gz", data)
    out = tmp_path / "out"
    policy = str(ROOT / "policies" / "llm-slo.yaml")
    args = ["--baseline", "all", "--replica-hourly-usd", "10", "--out", str(out), "--no-plots"]
    code = main(["simulate", "--trace", trace, "--policy", policy, *args])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["expected_requests"] == len(rows)
    assert summary["runs"]["llm-slo"]["requests_served"] == len(rows)
