"""`autoscaler simulate` end to end on odd but valid request traces, the way real downloads
and exports come (separators, blank rows, unsorted and duplicate times, epoch and ISO clocks,
gaps, zero and large sizes, JSON Lines with keys coming and going), and the faults that must
stop with a clear message instead of a hang. Every file is generated here, small."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from autoscaler.cli import main
from autoscaler.simulate.traces import RequestTrace, TraceError, load_trace

ROOT = Path(__file__).resolve().parents[2]
POLICY = str(ROOT / "policies" / "llm-slo.yaml")
CANONICAL = "arrival_s,input_tokens,output_tokens"
N = 60  # requests in most files: enough for a few evaluations, fast


def rows(times: list[float] | None = None, sep: str = ",") -> str:
    times = times if times is not None else [i * 2.0 for i in range(N)]
    return "".join(f"{t}{sep}{300 + i}{sep}{20 + i % 7}\n" for i, t in enumerate(times))


def iso_rows(stamp: str) -> str:
    return "".join(
        f"{stamp.format(m=i // 30, s=i % 30 * 2)},{300 + i},{20 + i % 7}\n" for i in range(N)
    )


def jsonl(objects: list[dict[str, object]], joint: str = "\n") -> str:
    return joint.join(json.dumps(o) for o in objects) + "\n"


def mooncake(i: int) -> dict[str, object]:
    return {"timestamp": i * 2000, "input_length": 300 + i, "output_length": 20, "hash_ids": [i]}


BURSTGPT = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n" + "".join(
    f"{86400 + i * 3},{'GPT-4' if i % 3 else 'ChatGPT'},{400 + i},{0 if i % 4 == 0 else 90},"
    f"{490 + i},{'API log' if i % 2 else 'Conversation log'}\n"
    for i in range(N)
)
ODD_BUT_VALID: list[tuple[str, str | bytes]] = [
    ("bom.csv", b"\xef\xbb\xbf" + (CANONICAL + "\n" + rows()).encode()),
    ("crlf.csv", (CANONICAL + "\n" + rows()).replace("\n", "\r\n")),
    ("blank_lines_around.csv", "\n,,\n" + CANONICAL + "\n" + rows() + "\n\n\r\n"),
    ("spreadsheet_empty_rows.csv", CANONICAL + "\n" + rows() + ",,\n , ,\n"),
    (
        "extra_columns.csv",
        "id,model,arrival_s,input_tokens,note,output_tokens\n"
        + "".join(f"{i},m,{i * 2},{300 + i},x,{20 + i}\n" for i in range(N)),
    ),
    (  # every field quoted, one with a comma inside
        "quoted.csv",
        '"arrival_s","input_tokens","note","output_tokens"\n'
        + "".join(f'"{i * 2}","{300 + i}","a, b","{20 + i}"\n' for i in range(N)),
    ),
    (
        "reordered.csv",
        "output_tokens,input_tokens,arrival_s\n"
        + "".join(f"{20 + i},{300 + i},{i * 2}\n" for i in range(N)),
    ),
    ("trace.csv.gz", gzip.compress((CANONICAL + "\n" + rows()).encode())),
    ("trace.jsonl.gz", gzip.compress(jsonl([mooncake(i) for i in range(N)]).encode())),
    ("semicolon.csv", CANONICAL.replace(",", ";") + "\n" + rows(sep=";")),
    ("tab.tsv", CANONICAL.replace(",", "\t") + "\n" + rows(sep="\t")),
    ("unsorted.csv", CANONICAL + "\n" + rows([(i * 37) % N * 2.0 for i in range(N)])),
    ("duplicate_times.csv", CANONICAL + "\n" + rows([(i // 10) * 20.0 for i in range(N)])),
    ("epoch_seconds.csv", CANONICAL + "\n" + rows([1715299200.25 + i * 2 for i in range(N)])),
    (
        "epoch_ms.csv",
        "timestamp_ms,input_length,output_length\n"
        + rows([1715299200000 + i * 2000 for i in range(N)]),
    ),
    (  # Azure 2023: seven fractional digits, no zone
        "azure_2023.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        + iso_rows("2023-11-16 18:{m:02d}:{s:02d}.6805900"),
    ),
    (
        "iso_zulu.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        + iso_rows("2023-11-16T18:{m:02d}:{s:02d}.1234567Z"),
    ),
    (
        "iso_offset.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        + iso_rows("2024-05-10 00:{m:02d}:{s:02d}.017335-08:00"),
    ),
    ("one_request.csv", CANONICAL + "\n7,300,20\n"),
    (
        "gaps_of_hours.csv",
        CANONICAL + "\n" + rows([i * 2.0 + (i // 20) * 3 * 3600 for i in range(N)]),
    ),
    ("burstgpt_failures_and_models.csv", BURSTGPT),
    ("zero_input.csv", CANONICAL + "\n" + "".join(f"{i * 2},0,20\n" for i in range(N))),
    ("zero_sizes.csv", CANONICAL + "\n" + "".join(f"{i * 2},0,0\n" for i in range(N))),
    ("large_sizes.csv", CANONICAL + "\n" + rows() + "121,2000000,200000\n"),
    (
        "float_tokens.csv",
        CANONICAL + "\n" + "".join(f"{i * 2},{300 + i}.0,2e1\n" for i in range(N)),
    ),
    (
        "extra_and_missing_keys.jsonl",
        jsonl(
            [
                {**mooncake(i), "extra": {"k": [1]}} if i % 2 else {**mooncake(i), "hash_ids": None}
                for i in range(N)
            ]
        ).replace(', "hash_ids": null', ""),
    ),
    ("blank_lines.jsonl", "\n" + jsonl([mooncake(i) for i in range(N)], joint="\n\n") + "\n\n"),
]


def count(data: str | bytes) -> int:
    """The requests in a sample: its non-blank rows after the header (JSON: every object)."""
    text = (
        gzip.decompress(data).decode()
        if isinstance(data, bytes) and data[:2] == b"\x1f\x8b"
        else data
    )
    text = text.decode("utf-8-sig") if isinstance(text, bytes) else text
    lines = [line for line in text.splitlines() if line.replace(",", "").strip()]
    return len(lines) if lines[0].startswith("{") else len(lines) - 1


@pytest.mark.parametrize(("name", "data"), ODD_BUT_VALID, ids=[n for n, _ in ODD_BUT_VALID])
def test_odd_but_valid_traces_simulate_end_to_end(
    tmp_path: Path, name: str, data: str | bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / name
    trace.write_bytes(data if isinstance(data, bytes) else data.encode())
    out = tmp_path / "out"
    args = ["--trace", str(trace), "--policy", POLICY, "--baseline", "hpa", "--out", str(out)]
    assert main(["simulate", *args]) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text(), parse_constant=_no_nan)
    expected = count(data)
    assert summary["settings"]["mode"] == "request"
    assert summary["settings"]["expected_requests"] == expected
    for run in ("llm-slo", "hpa"):
        assert summary["runs"][run]["requests_served"] == expected
        assert summary["runs"][run]["slo_attainment"] == 1.0  # a light load: nobody waits
        assert summary["runs"][run]["billed_replica_seconds"] > 0
    assert (out / "llm-slo.png").stat().st_size > 0


def _no_nan(constant: str) -> float:
    raise AssertionError(f"summary.json holds {constant}: not JSON")


def test_unsorted_rows_are_sorted_and_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "merged.csv"
    trace.write_text(CANONICAL + "\n" + rows([0, 4, 2, 6, 6, 1, 8]))
    out = tmp_path / "out"
    code = main(["simulate", "--trace", str(trace), "--baseline", "hpa", "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert f"note: {trace}:4: 2 row(s) arrive before the row above them" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["rows_out_of_order"] == 2
    sorted_trace = load_trace(str(trace))
    assert isinstance(sorted_trace, RequestTrace)
    assert sorted_trace.arrival_s.tolist() == [0, 1, 2, 4, 6, 6, 8]
    assert sorted_trace.input_tokens.tolist() == [300, 305, 302, 301, 303, 304, 306]


@pytest.mark.parametrize(
    ("header", "times", "offset"),
    [
        (CANONICAL, [1715299200.5, 1715299202], 1715299200.5),
        ("timestamp_ms,input_length,output_length", [1715299260000, 1715299200000], 1715299200),
        (CANONICAL, [5, 7], 0.0),  # seconds from the trace's own start: no date
    ],
)
def test_epoch_times_keep_their_date_for_schedules(
    tmp_path: Path, header: str, times: list[float], offset: float
) -> None:
    path = tmp_path / "epoch.csv"
    path.write_text(header + "\n" + rows(times))
    trace = load_trace(str(path))
    assert isinstance(trace, RequestTrace)
    assert trace.epoch_offset == pytest.approx(offset)
    assert trace.duration_s == pytest.approx(
        abs(times[1] - times[0]) / (1000 if "ms" in header else 1)
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (  # a 14-day rate trace written in ms: 38 years, was simulated for hours
            "rates.csv",
            "window_start_s,rate_rps\n" + "".join(f"{i * 600_000},1\n" for i in range(2016)),
            "rates.csv:60: column 'window_start_s': '34800000' stretches the trace to 403 days",
        ),
        (
            "gone.jsonl",
            jsonl([mooncake(0), {"timestamp": 5, "input_length": 1}]),
            "gone.jsonl:2: column 'output_length' has no value",
        ),
        ("empty.csv", CANONICAL + "\n,,\n\n", "empty.csv: no requests (only a header)"),
        ("array.json", json.dumps([mooncake(0)]), "array.json:1: a JSON array; "),
        ("one_column.csv", "when\n1\n", "one_column.csv:1: unrecognised header (when)"),
        (
            "neg.csv",
            "\n" + CANONICAL + "\n0,1,2\n1,1,-4\n",
            "neg.csv:4: column 'output_tokens': '-4'",
        ),
    ],
)
def test_faults_are_one_clear_line(
    tmp_path: Path, name: str, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TraceError):
        load_trace(str(path))
    out = tmp_path / "out"
    assert main(["simulate", "--trace", str(path), "--baseline", "hpa", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("rate", "mode", "message"),
    [
        (  # a corrupt (or unscaled) rate: millions of replicas, was a hang
            "1e9",
            "auto",
            "the load needs 62,5",
        ),
        (  # request mode on a rate trace of 600 million requests: was all of memory
            "1e6",
            "request",
            "600,000,000 requests are too many for --mode request",
        ),
    ],
)
def test_loads_too_big_to_simulate_are_refused(
    tmp_path: Path, rate: str, mode: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = tmp_path / "rates.csv"
    rates.write_text(f"window_start_s,rate_rps\n0,{rate}\n600,0\n")
    sizes = tmp_path / "sizes.csv"
    sizes.write_text(CANONICAL + "\n" + rows())
    args = ["--trace", str(rates), "--sizes", str(sizes), "--mode", mode, "--baseline", "hpa"]
    assert main(["simulate", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
