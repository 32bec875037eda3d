"""`textcut`: the one rule for cutting a value's text in a message."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.textcut import cut, one_line


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("", 5, ""),
        ("abcde", 5, "abcde"),  # exactly the limit: as is
        ("abcdef", 5, "ab..."),
        ("a" * 100, 40, "a" * 37 + "..."),
    ],
)
def test_cut_keeps_what_fits_and_marks_what_it_cuts(text: str, limit: int, expected: str) -> None:
    assert cut(text, limit) == expected


@given(st.text(), st.integers(min_value=3, max_value=300))
def test_cut_never_exceeds_the_limit_and_keeps_the_start(text: str, limit: int) -> None:
    shown = cut(text, limit)
    assert len(shown) <= limit
    assert shown == text or (shown.endswith("...") and text.startswith(shown[:-3]))


def test_one_line_folds_line_breaks_before_cutting() -> None:
    assert one_line("a\n  b\r\n\tc", 10) == "a b c"
    assert one_line("x\n" * 50, 9) == "x x x ..."
