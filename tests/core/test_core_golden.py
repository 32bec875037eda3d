"""The core's decisions stay exactly what they were: every scenario of `golden.py` replayed
against the digests recorded in tests/core/data/golden.json (made on main before the speed
work). A mismatch names the first block of decisions where the streams part; dump the
scenario (`python -m tests.core.golden --dump NAME`) on both versions and diff to see it."""

from __future__ import annotations

import json

import pytest

from .golden import BLOCK, DATA, SCENARIOS, summary

RECORDED = json.loads(DATA.read_text())


def test_every_scenario_is_recorded() -> None:
    assert sorted(RECORDED) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_decisions_match_the_recorded_stream(name: str) -> None:
    got, want = summary(name), RECORDED[name]
    for i, (a, b) in enumerate(zip(got["blocks"], want["blocks"], strict=False)):
        assert a == b, f"{name}: decisions {i * BLOCK}..{(i + 1) * BLOCK - 1} differ"
    assert got["blocks"] == want["blocks"]
    assert got["reasons"] == want["reasons"]
    assert got["final"] == want["final"]
