"""A failing action said once: `Repeats` tells `record.py` whether an evaluation's failed action
gets an `action_failed` line, and when a recovery gets an `action_recovered` one.

A refused action fails the same way at every evaluation (every few seconds, for as long as the
cause lasts): one line per distinct failure (action and error text; one `Repeats` per policy),
again when it changes, a reminder every `REMIND` seconds with how many repeats were not logged,
and one line when the same action goes through again. Only the log is thinned: metrics,
/status and the history keep every failure. A decision that attempts nothing (no action, dry
run, standby) neither repeats nor clears a failure: the cause was not tried again.
"""

from __future__ import annotations

from dataclasses import dataclass

REMIND = 600.0  # seconds between lines for a failure that keeps repeating


@dataclass
class Repeats:
    failure: tuple[str, str] | None = None  # (action, error text) of the failure in force
    said_at: float = 0.0  # when its last line was logged (the core's `now`)
    unsaid: int = 0  # repeats since that line
    failures: int = 0  # evaluations in a row it failed, for the recovery line

    def failed(self, action: str, error: str, now: float) -> int | None:
        """A failed action: None to stay quiet, else the number of repeats not logged since
        the last line (0 for a new or changed failure)."""
        key = (action, error)
        if key != self.failure:
            self.failure, self.said_at, self.unsaid, self.failures = key, now, 0, 1
            return 0
        self.failures += 1
        if now - self.said_at < REMIND:
            self.unsaid += 1
            return None
        repeats, self.said_at, self.unsaid = self.unsaid, now, 0
        return repeats

    def executed(self, action: str) -> int | None:
        """An action went through: the failures in a row it ends (the same action failed
        before), else None."""
        if self.failure is None or self.failure[0] != action:
            return None
        failures, self.failure, self.unsaid, self.failures = self.failures, None, 0, 0
        return failures
