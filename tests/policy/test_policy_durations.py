"""`parse_duration`: the accepted forms, and a clear ValueError for everything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.policy.durations import parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("15s", 15.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2h", 7200.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        ("2m30s", 150.0),
        ("1.5m", 90.0),
        ("0s", 0.0),
        ("10", 10.0),
        (" 15s ", 15.0),
        (0, 0.0),
        (3, 3.0),
        (2.5, 2.5),
    ],
)
def test_accepted_forms(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", 'got "5 minutes"'),
        ("m", 'got "m"'),
        ("", 'got ""'),
        ("15x", 'got "15x"'),
        ("-5s", 'got "-5s"'),
        ("1h 30m", 'got "1h 30m"'),
        (True, "got boolean true"),
        (None, "got NoneType"),
        ([1], "got list"),
        (float("nan"), "got nan"),
        (float("inf"), "got inf"),
        (10**400, "too large"),
    ],
)
def test_rejected_forms_name_the_value(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    text = str(caught.value)
    assert message in text
    assert '"15s", "5m", "1h30m"' in text


def test_negative_numbers_are_rejected() -> None:
    with pytest.raises(ValueError, match="must not be negative, got -1"):
        parse_duration(-1)


@given(
    st.integers(min_value=0, max_value=100),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=59),
)
def test_combined_units_add_up(hours: int, minutes: int, seconds: int) -> None:
    text = f"{hours}h{minutes}m{seconds}s"
    assert parse_duration(text) == hours * 3600 + minutes * 60 + seconds


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    try:
        result = parse_duration(text)
    except ValueError:
        return
    assert result >= 0
