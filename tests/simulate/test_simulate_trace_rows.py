"""`--where COLUMN=VALUE`: replaying the requests of one workload out of a trace that mixes
several (BurstGPT's `Model` and `Log Type`), end to end and at the reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoscaler.cli import main
from autoscaler.simulate.trace_rows import Where, parse_where
from autoscaler.simulate.traces import ColumnMap, RequestTrace, TraceError, load_trace
from tests.simulate.test_simulate_trace_quirks import BURSTGPT, POLICY

CHATGPT = sum(1 for line in BURSTGPT.splitlines()[1:] if ",ChatGPT," in line)
CHATGPT_API = sum(
    1 for line in BURSTGPT.splitlines()[1:] if ",ChatGPT," in line and "API log" in line
)


def burstgpt(tmp_path: Path, text: str = BURSTGPT) -> Path:
    path = tmp_path / "burstgpt.csv"
    path.write_text(text)
    return path


def test_where_keeps_only_the_rows_of_one_workload(tmp_path: Path) -> None:
    path = str(burstgpt(tmp_path))
    everything = load_trace(path)
    chatgpt = load_trace(path, ColumnMap(where=(Where("Model", "ChatGPT"),)))
    both = load_trace(
        path, ColumnMap(where=(Where("model", "ChatGPT"), Where("Log Type", "API log")))
    )
    assert isinstance(everything, RequestTrace) and isinstance(chatgpt, RequestTrace)
    assert isinstance(both, RequestTrace)
    assert 0 < CHATGPT_API < CHATGPT < len(everything)
    assert (len(chatgpt), len(both)) == (CHATGPT, CHATGPT_API)
    assert set(chatgpt.input_tokens.tolist()) < set(everything.input_tokens.tolist())


def test_a_bad_row_of_a_kept_workload_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    lines = BURSTGPT.splitlines()
    row = next(n for n, line in enumerate(lines) if n > 5 and ",ChatGPT," in line)
    lines[row] = lines[row].replace(",ChatGPT,", ",ChatGPT,-")  # request tokens negative
    path = str(burstgpt(tmp_path, "\n".join(lines) + "\n"))
    with pytest.raises(TraceError, match=rf"burstgpt.csv:{row + 1}: "):
        load_trace(path, ColumnMap(where=(Where("Model", "ChatGPT"),)))


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (Where("Model", "gpt-4"), r"no request has Model=gpt-4 \(Model holds 'ChatGPT', 'GPT-4'\)"),
        (Where("Region", "eu"), r"burstgpt.csv:1: --where Region=eu: no column 'Region'"),
    ],
)
def test_a_where_that_keeps_nothing_says_what_the_column_holds(
    tmp_path: Path, where: Where, message: str
) -> None:
    with pytest.raises(TraceError, match=message):
        load_trace(str(burstgpt(tmp_path)), ColumnMap(where=(where,)))


def test_where_on_a_rate_trace_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("window_start_s,rate_rps\n0,1\n600,2\n")
    with pytest.raises(TraceError, match="--where picks requests; this is a rate trace"):
        load_trace(str(path), ColumnMap(where=(Where("Model", "x"),)))


@pytest.mark.parametrize("text", ["Model", "=ChatGPT", ""])
def test_a_where_without_column_and_value_is_a_usage_error(text: str) -> None:
    with pytest.raises(Exception, match="is not COLUMN=VALUE"):
        parse_where(text)


def test_simulate_replays_one_workload_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["--trace", str(burstgpt(tmp_path)), "--where", "Model=ChatGPT", "--policy", POLICY]
    assert main(["simulate", *args, "--baseline", "hpa", "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["expected_requests"] == CHATGPT
    assert summary["runs"]["hpa"]["requests_served"] == CHATGPT
    with pytest.raises(SystemExit) as usage:
        main(["simulate", "--trace", "x.csv", "--where", "Model", "--out", str(out)])
    assert usage.value.code == 2
    assert "is not COLUMN=VALUE" in capsys.readouterr().err
