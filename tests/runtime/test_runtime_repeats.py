"""`repeats.Repeats`: which failures of one policy's actions get a log line (the daemon-level
test is tests/runtime/test_runtime_delete_spec_check.py)."""

from __future__ import annotations

from autoscaler.runtime.repeats import REMIND, Repeats


def test_a_failure_is_said_once_then_on_change_reminder_and_recovery() -> None:
    r = Repeats()
    assert r.failed("delete", "refused: a", 0.0) == 0
    assert [r.failed("delete", "refused: a", t) for t in (5.0, 10.0)] == [None, None]
    assert r.failed("delete", "refused: b", 15.0) == 0  # the error text changed
    assert r.failed("scale", "refused: b", 20.0) == 0  # the action changed
    assert r.failed("scale", "refused: b", 25.0) is None
    assert r.failed("scale", "refused: b", 20.0 + REMIND) == 1  # reminder: 1 repeat unsaid
    assert r.failed("scale", "refused: b", 25.0 + REMIND) is None
    assert r.executed("delete") is None  # another action going through ends nothing
    assert r.executed("scale") == 4
    assert r.executed("scale") is None
    assert r.failed("scale", "refused: b", 30.0 + REMIND) == 0  # after recovery: new again
