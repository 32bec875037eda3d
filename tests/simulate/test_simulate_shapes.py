"""The generated traffic shapes: deterministic per seed, readable by simulate, and shaped as
documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autoscaler.simulate.shapes import SHAPES, main, write_shapes
from autoscaler.simulate.traces import RateTrace, RequestTrace, load_trace


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    first = write_shapes(tmp_path / "a", seed=3)
    again = write_shapes(tmp_path / "b", seed=3)
    other = write_shapes(tmp_path / "c", seed=4)
    assert list(first) == list(SHAPES)
    for name in SHAPES:
        assert first[name].read_bytes() == again[name].read_bytes(), name
        assert first[name].read_bytes() != other[name].read_bytes(), name


def test_one_shape_alone_is_the_same_as_in_the_full_set(tmp_path: Path) -> None:
    full = write_shapes(tmp_path / "all", seed=1)
    alone = write_shapes(tmp_path / "one", seed=1, names=["diurnal"])
    assert list(alone) == ["diurnal"]
    assert alone["diurnal"].read_bytes() == full["diurnal"].read_bytes()


def test_the_shapes_load_and_have_their_documented_form(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--seed", "0"]) == 0
    bursty = load_trace(str(tmp_path / "bursty-short.csv"))
    long = load_trace(str(tmp_path / "reasoning-long.csv"))
    diurnal = load_trace(str(tmp_path / "diurnal.csv"))
    assert isinstance(bursty, RequestTrace) and isinstance(long, RequestTrace)
    assert isinstance(diurnal, RateTrace)
    # bursty-short: an hour at 15 req/s with 4x bursts, short answers
    assert 3500 < bursty.duration_s <= 3600
    per_second = np.bincount(bursty.arrival_s.astype(int))
    assert 15 < per_second.mean() < 30 and per_second.max() > 45
    assert np.median(bursty.output_tokens) == pytest.approx(60, rel=0.1)
    # reasoning-long: two hours at ~0.6 req/s, answers of thousands of tokens
    assert len(long) / long.duration_s == pytest.approx(0.6, rel=0.1)
    assert np.median(long.output_tokens) == pytest.approx(3000, rel=0.1)
    # diurnal: 14 days of 5-minute windows, weekends lower than weekdays
    assert diurnal.duration_s == 14 * 86400
    day_means = diurnal.rate_rps.reshape(14, -1).mean(axis=1)
    assert day_means[5] < 0.8 * day_means[2] and day_means[6] < 0.8 * day_means[3]
    assert (diurnal.rate_cv == 1.5).all()
