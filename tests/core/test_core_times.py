"""Times read as times: the pure formatting helpers, messages without epoch floats, the
scale-to-zero floor's wording, and scale-down waiting out its window again after a resume."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.core import decide, initial_state, with_override, with_paused
from autoscaler.core import reasons as R
from autoscaler.core.timefmt import duration, iso
from autoscaler.policy.durations import parse_duration
from autoscaler.policy.model import ScaleToZero

from .builders import T0, policy, ready, rules


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "0s"),
        (0.25, "250ms"),
        (1, "1s"),
        (59.6, "59.6s"),
        (60, "1m"),
        (250, "4m10s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (90061, "1d1h1m1s"),
        (-30, "-30s"),
    ],
)
def test_duration_table(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@given(st.integers(0, 10**8))
def test_whole_second_durations_parse_back(seconds: int) -> None:
    assert parse_duration(duration(seconds)) == seconds


def test_iso_is_utc_with_z() -> None:
    assert iso(T0) == "2023-11-14T22:13:20Z"
    assert iso(T0 + 0.25) == "2023-11-14T22:13:20.250Z"
    assert iso(None) is None


EPOCH_FLOAT = re.compile(r"\b1[0-9]{9}(\.[0-9]+)?\b")


def test_override_message_names_an_instant_not_an_epoch() -> None:
    s = with_override(initial_state(), 3, T0 + 600)
    d, _ = decide(policy(), s, ready(2, waiting=1.0), T0)
    assert "until 2023-11-14T22:23:20Z" in d.message
    assert not EPOCH_FLOAT.search(d.message)


def test_scale_to_zero_floor_does_not_say_min_replicas() -> None:
    """replicas.min 0: the floor of a running deployment is 1, and the message says why;
    the reason code stays `min_replicas` (codes are never renamed)."""
    p = policy(min=0, scale_to_zero=ScaleToZero(after=300.0, activation=()))
    d, _ = decide(p, initial_state(), ready(3, waiting=0.0), T0)
    assert d.replicas == 1
    assert R.MIN_REPLICAS in d.reasons
    assert "min_replicas" not in d.message
    assert "at least 1" in d.message
    d, _ = decide(policy(min=2), initial_state(), ready(3, waiting=0.0), T0)
    assert "raised to 2 (min_replicas)" in d.message


def _after_resume(window: float, paused_for: float, step: float) -> list[tuple[float, int]]:
    """8 replicas under load, paused, the load gone, resumed after `paused_for`: the
    (seconds since resume, replicas) of each decision after it."""
    p = policy(max=20, scale_down=rules(window=window))
    d, s = decide(p, initial_state(), ready(8, waiting=40.0), T0)
    s = with_paused(s, True)
    d, s = decide(p, s, ready(8, waiting=0.0), T0 + 1)
    assert d.reasons == (R.PAUSED,)
    resumed = T0 + 1 + paused_for
    s = with_paused(s, False, now=resumed)
    out = []
    replicas = 8
    t = resumed
    while t <= resumed + window + 2 * step:
        d, s = decide(p, s, ready(replicas, waiting=0.0), t)
        out.append((t - resumed, d.replicas))
        replicas = d.replicas
        t += step
    return out


@pytest.mark.parametrize(
    ("window", "paused_for"), [(300.0, 3600.0), (60.0, 10.0), (300.0, 301.0), (15.0, 86400.0)]
)
def test_scale_down_waits_the_window_again_after_a_resume(window: float, paused_for: float) -> None:
    seen = _after_resume(window, paused_for, 15.0)
    assert all(r == 8 for since, r in seen if since < window), seen
    assert any(r < 8 for since, r in seen if since >= window), seen


@given(
    window=st.sampled_from((15.0, 60.0, 300.0, 900.0)),
    paused_for=st.floats(0.0, 100_000.0),
    step=st.sampled_from((5.0, 15.0, 30.0)),
)
def test_no_scale_down_inside_the_window_after_resume(
    window: float, paused_for: float, step: float
) -> None:
    seen = _after_resume(window, paused_for, step)
    assert all(r == 8 for since, r in seen if since < window)
    assert seen[-1][1] < 8  # and once it has passed, it does scale down


def test_resume_without_a_time_and_pause_reset_it() -> None:
    s = with_paused(with_paused(initial_state(), True), False)
    assert s.resumed_at is None
    s = with_paused(with_paused(initial_state(), True), False, now=T0)
    assert s.resumed_at == T0
    assert with_paused(s, True).resumed_at is None
    assert with_paused(initial_state(), False, now=T0).resumed_at is None  # was not paused


def test_a_policy_file_pause_ends_with_the_same_wait() -> None:
    """`paused: true` taken out of the policy (a reload): the daemon applies with_resumed."""
    from autoscaler.core import with_resumed

    p = policy(max=20, scale_down=rules(window=300.0))
    d, s = decide(p, initial_state(), ready(8, waiting=40.0), T0)
    paused = policy(max=20, scale_down=rules(window=300.0), paused=True)
    d, s = decide(paused, s, ready(8, waiting=0.0), T0 + 3600)
    assert d.reasons == (R.PAUSED,)
    s = with_resumed(s, T0 + 3600)
    d, _ = decide(p, s, ready(8, waiting=0.0), T0 + 3610)
    assert d.replicas == 8 and R.STABILIZED_DOWN in d.reasons
    d, _ = decide(p, s, ready(8, waiting=0.0), T0 + 3600 + 300)
    assert d.replicas < 8
    with pytest.raises(ValueError, match="finite"):
        with_resumed(s, float("nan"))
