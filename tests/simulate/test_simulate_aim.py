"""The aim table: which run meets the wait target, which is cheapest, the saving against hpa."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoscaler.simulate.aim import main, row


def summary(**runs: tuple[float, float]) -> dict[str, object]:
    return {
        "runs": {
            name: {
                "billed_replica_seconds": cost,
                "slo_attainment": within,
                "cost_ratio_to_bound": cost / 100.0,
                "cost_ratio_to_clairvoyant": cost / 120.0,
            }
            for name, (cost, within) in runs.items()
        }
    }


def test_met_when_within_target_and_cheapest_of_the_runs_meeting_it() -> None:
    runs = {"llm-slo": (150.0, 0.995), "hpa": (200.0, 0.999), "kpa": (140.0, 0.98)}
    doc = summary(**runs, **{"llm-chat": (120.0, 0.999)})  # a policy, not a baseline
    r = row("t", doc, "llm-slo")
    assert r["meets"] and r["cheapest_of_those_meeting"]
    assert r["chat"] == (0.999, pytest.approx(0.8))
    assert r["cheapest"] == "hpa" and r["saving_vs_hpa"] == pytest.approx(0.25)


def test_missed_when_a_baseline_meeting_the_target_is_cheaper_or_we_miss_it() -> None:
    cheaper = row("t", summary(**{"llm-slo": (150.0, 0.995), "hpa": (140.0, 0.99)}), "llm-slo")
    assert not cheaper["cheapest_of_those_meeting"]
    missed = row("t", summary(**{"llm-slo": (100.0, 0.985), "hpa": (140.0, 0.99)}), "llm-slo")
    assert not missed["meets"]


def test_the_table_names_the_median_saving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i, hpa in enumerate((200.0, 160.0, 150.0)):
        folder = tmp_path / str(i)
        folder.mkdir()
        doc = summary(**{"llm-slo": (150.0, 0.995), "hpa": (hpa, 0.999)})
        (folder / "summary.json").write_text(json.dumps(doc))
    assert main([f"trace {i}={tmp_path / str(i)}" for i in range(3)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("| trace ") == 4  # header and three rows
    assert "Median saving against hpa over these 3 traces: +6.2 %" in printed


@pytest.mark.parametrize(
    ("make", "policy", "message"),
    [
        (lambda d: None, "llm-slo", "no readable summary.json"),  # was a FileNotFoundError
        (lambda d: (d / "summary.json").write_text("{trunc"), "llm-slo", "no readable summary"),
        (
            lambda d: (d / "summary.json").write_text('{"runs": {"hpa": {}}}'),
            "llm-slo",
            "no run named 'llm-slo'",  # was a KeyError
        ),
    ],
)
def test_a_folder_without_the_summary_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, policy: str, message: str
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    make(folder)
    with pytest.raises(SystemExit) as exit_:
        main(["--policy", policy, f"X={folder}"])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
