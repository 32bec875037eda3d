"""The demo's terminal view and its end-of-run summary.

`PolicyRow` is what one line shows (load, replicas current/desired, the last decision and its
reasons); `ActionLog` turns the provider simulator's write log into the actions really taken
(create, scale up/down, delete, recreate) and keeps the summary figures. `LiveView` draws:
on a terminal it redraws one block in place with ANSI escapes; otherwise (a pipe, CI) it
prints each action as it happens and a status line per policy every few seconds.
The row shape and the table come from `autoscaler.ctl.table` (shared with
`autoscaler status`). Formatting only: no daemon, no simulator objects, no clock reads here.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from autoscaler.ctl.table import PolicyRow, describe_decision, format_table, num


@dataclass(frozen=True, slots=True)
class ActionEvent:
    t: float  # demo seconds
    policy: str
    kind: str  # create | recreate | scale_up | scale_down | delete
    replicas: int  # the count after the action
    reasons: tuple[str, ...] = ()


@dataclass
class PolicySummary:
    actions: Counter[str] = field(default_factory=Counter)
    min_replicas: int | None = None
    max_replicas: int | None = None

    def saw(self, replicas: int) -> None:
        self.min_replicas = (
            replicas if self.min_replicas is None else min(self.min_replicas, replicas)
        )
        self.max_replicas = (
            replicas if self.max_replicas is None else max(self.max_replicas, replicas)
        )

    def to_json(self) -> dict[str, Any]:
        a = self.actions
        return {
            "actions": dict(sorted(a.items())),
            "scale_ups": a["scale_up"],
            "scale_downs": a["scale_down"],
            "creates": a["create"] + a["recreate"],
            "deletes": a["delete"],
            "recreates": a["recreate"],
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
        }


class ActionLog:
    """Provider write calls (the simulator's log) -> actions per policy, in order.

    The simulator's log is the ground truth of what the daemon did to the deployments:
    a decision that failed or was skipped never shows up as an action here."""

    def __init__(self, policy_of_deployment: Mapping[str, str]) -> None:
        self.policy_of = dict(policy_of_deployment)  # deployment name -> policy name
        self.summaries = {p: PolicySummary() for p in self.policy_of.values()}
        self.events: list[ActionEvent] = []
        self._seen = 0
        self._replicas: dict[str, int] = {}  # deployment name -> count after the last action
        self._deleted: set[str] = set()

    def feed(
        self,
        write_log: Sequence[Mapping[str, Any]],
        name_of_id: Mapping[str, str],
        now: float,
        reasons_for: Callable[[str, str], tuple[str, ...]] | None = None,
        settled_before: float | None = None,
    ) -> list[ActionEvent]:
        """New entries of the write log -> new events. `name_of_id` maps deployment ids to
        names (scale and delete paths carry the id); `now` stamps the events;
        `reasons_for(policy, action)` gives the reasons of the decision behind an action.
        Entries logged after `settled_before` (the log's clock) wait for the next call, so
        the daemon has recorded the decision behind them by then."""
        new: list[ActionEvent] = []
        entries = list(write_log[self._seen :])
        for entry in entries:
            status = entry.get("status")
            if status is None:  # still in flight: look again next time
                break
            if settled_before is not None and float(entry.get("t", 0.0)) > settled_before:
                break
            self._seen += 1
            if not 200 <= int(status) < 300:
                continue
            event = self._event(entry, name_of_id, now, reasons_for)
            if event is not None:
                new.append(event)
        self.events.extend(new)
        return new

    def _event(
        self,
        entry: Mapping[str, Any],
        name_of_id: Mapping[str, str],
        now: float,
        reasons_for: Callable[[str, str], tuple[str, ...]] | None,
    ) -> ActionEvent | None:
        method = str(entry.get("method", "")).upper()
        parts = [p for p in str(entry.get("path", "")).split("/") if p]
        body = entry.get("body") if isinstance(entry.get("body"), dict) else {}
        assert isinstance(body, dict)
        if method == "POST" and parts and parts[-1] == "aimodels":
            name = str(body.get("name", ""))
            kind = "recreate" if name in self._deleted else "create"
            replicas = 1  # NeevCloud deploys one replica; scaling follows
        elif method == "PUT" and len(parts) >= 2 and parts[-1] == "scale":
            name = name_of_id.get(parts[-2], "")
            replicas = int(body.get("replicas", 0))
            kind = "scale_up" if replicas > self._replicas.get(name, 0) else "scale_down"
        elif method == "DELETE" and parts:
            name = name_of_id.get(parts[-1], "")
            kind, replicas = "delete", 0
            self._deleted.add(name)
        else:
            return None
        policy = self.policy_of.get(name)
        if policy is None:
            return None
        self._replicas[name] = replicas
        self.summaries[policy].actions[kind] += 1
        decision = {"create": "create", "recreate": "create", "delete": "delete"}.get(kind, "scale")
        reasons = reasons_for(policy, decision) if reasons_for is not None else ()
        return ActionEvent(now, policy, kind, replicas, tuple(reasons))

    def saw(self, policy: str, replicas: int) -> None:
        """A sample of the replicas the provider reports; counted from the policy's first
        action on (before it, the deployment was not under the daemon's control yet)."""
        summary = self.summaries.get(policy)
        if summary is not None and summary.actions:
            summary.saw(replicas)

    def to_json(self) -> dict[str, Any]:
        return {name: s.to_json() for name, s in self.summaries.items()}


# --- formatting ---------------------------------------------------------------------------


def format_event(event: ActionEvent) -> str:
    what = {
        "create": "created (1 replica, scaling follows)",
        "recreate": "recreated from zero (same name and spec)",
        "scale_up": f"scaled up to {event.replicas}",
        "scale_down": f"scaled down to {event.replicas}",
        "delete": "deleted: scaled to zero",
    }[event.kind]
    why = f"  [{','.join(event.reasons)}]" if event.reasons else ""
    return f"t={event.t:6.1f}s  {event.policy}: {what}{why}"


def format_status_line(t: float, row: PolicyRow) -> str:
    return (
        f"t={t:6.1f}s  {row.policy}: load {num(row.rate)}/s waiting {num(row.waiting, '{:d}')} "
        f"running {num(row.running, '{:d}')} replicas {row.current}/"
        f"{num(row.desired, '{:d}')} {row.status} | {describe_decision(row)}"
    )


def format_summary(
    summaries: Mapping[str, Mapping[str, Any]], *, wall_seconds: float, demo_seconds: float
) -> list[str]:
    lines = [f"summary: {wall_seconds:.0f} s ({demo_seconds:.0f} s of demo time)"]
    for policy, s in summaries.items():
        actions = ", ".join(f"{k} {v}" for k, v in s["actions"].items()) or "none"
        lines.append(
            f"  {policy:<8} actions: {actions}; replicas seen: min {num(s['min_replicas'], '{}')} "
            f"max {num(s['max_replicas'], '{}')}; deletes {s['deletes']}, "
            f"recreates {s['recreates']}"
        )
    return lines


class LiveView:
    """Draws frames. `tty` None: decide from the stream."""

    def __init__(self, stream: TextIO, *, tty: bool | None = None, plain_every: float = 5.0):
        self.stream = stream
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(callable(isatty) and isatty()) if tty is None else tty
        self.plain_every = plain_every
        self._drawn = 0  # lines of the last redrawn block
        self._last_plain: float | None = None
        self._recent: list[str] = []

    def width(self) -> int:
        return shutil.get_terminal_size((120, 40)).columns if self.tty else 160

    def frame(
        self,
        t: float,
        header: str,
        rows: Sequence[PolicyRow],
        events: Iterable[ActionEvent],
    ) -> None:
        new_events = [format_event(e) for e in events]
        if self.tty:
            self._recent = (self._recent + new_events)[-8:]
            width = self.width()
            lines = [header[:width], *format_table(rows, width), "", "recent actions:"]
            lines += [f"  {e}"[:width] for e in self._recent] or ["  (none yet)"]
            # Move to the start of the previous block and clear it, then draw the new one.
            prefix = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
            self.stream.write(prefix + "\n".join(lines) + "\n")
            self._drawn = len(lines)
        else:
            for line in new_events:
                self.stream.write(line + "\n")
            if self._last_plain is None or t - self._last_plain >= self.plain_every:
                self._last_plain = t
                for row in rows:
                    self.stream.write(format_status_line(t, row) + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line outside the redrawn block (start-up, summary)."""
        self._drawn = 0
        self.stream.write(text + "\n")
        self.stream.flush()
