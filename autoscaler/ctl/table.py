"""Rows of policies as text: the one row shape (`PolicyRow`) and its formatting, shared by
`autoscaler status` (a running daemon's /status, `format_status`) and the demo's terminal view
(`autoscaler.demo.view`, which imports it from here).

Lives in `ctl` because `autoscaler status` is the daemon's own client; the demo sits above it
and reuses these rows, never the other way round. Formatting only: no I/O, no clock reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PolicyRow:
    policy: str
    deployment: str
    rate: float | None  # offered requests per second (demo time)
    waiting: int | None
    running: int | None
    status: str  # the deployment's status at the provider ("absent" at zero)
    current: int  # replicas the provider has
    serving: int  # replicas serving traffic
    desired: int | None  # what the last decision asked for
    action: str | None  # the last decision's action
    reasons: tuple[str, ...] = ()
    message: str = ""
    note: str | None = None  # a transition in progress or the last error


def num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def describe_decision(row: PolicyRow) -> str:
    if row.action is None:
        return "(no decision yet)"
    reasons = ",".join(row.reasons) or "-"
    target = f" -> {row.desired}" if row.action in ("scale", "create") else ""
    return f"{row.action}{target} [{reasons}]"


def format_table(rows: Sequence[PolicyRow], width: int = 120) -> list[str]:
    header = (
        f"{'POLICY':<10} {'LOAD/s':>6} {'WAIT':>5} {'RUN':>5}  {'REPLICAS':<9} "
        f"{'STATUS':<12} LAST DECISION"
    )
    lines = [header]
    for row in rows:
        replicas = f"{row.current}/{num(row.desired, '{:d}')}"
        line = (
            f"{row.policy:<10} {num(row.rate):>6} {num(row.waiting, '{:d}'):>5} "
            f"{num(row.running, '{:d}'):>5}  {replicas:<9} {row.status:<12} "
            f"{describe_decision(row)}"
        )
        lines.append(line)
        detail = row.note or row.message
        if detail:
            lines.append(f"{'':<10} {detail}")
    return [line[:width] for line in lines]


def status_rows(status: Mapping[str, Any]) -> list[PolicyRow]:
    """One row per policy of a daemon's /status, in the demo's row shape."""
    rows = []
    for name, p in sorted((status.get("policies") or {}).items()):
        obs = p.get("last_observation") or {}
        decision = p.get("last_decision") or {}
        notes = []
        if p.get("paused"):
            notes.append("PAUSED")
        override = p.get("override")
        if isinstance(override, Mapping):
            notes.append(
                f"OVERRIDE {override.get('replicas')} until {override.get('until')} "
                f"({override.get('remaining')} left)"
            )
        if p.get("dry_run"):
            notes.append("dry run")
        if p.get("transition"):
            notes.append(str(p["transition"]))
        if p.get("last_error"):
            notes.append(f"error: {p['last_error']}")
        if decision.get("executed") is False and decision.get("not_executed"):
            notes.append(f"not executed ({decision['not_executed']})")
        message = str(decision.get("message", ""))
        if decision.get("t"):
            message = f"{decision['t']}: {message}"
        metrics = obs.get("metrics") or {}
        if metrics:
            message += " | " + ", ".join(
                f"{k}={'failed' if v is None else format(v, 'g')}"
                for k, v in sorted(metrics.items())
            )
        rows.append(
            PolicyRow(
                policy=name,
                deployment=str(p.get("deployment", "")),
                rate=None,
                waiting=None,
                running=None,
                status=str(obs.get("status", "?")),
                current=int(obs.get("replicas") or 0),
                serving=int(obs.get("ready_replicas") or 0),
                desired=decision.get("replicas"),
                action=decision.get("action"),
                reasons=tuple(decision.get("reasons") or ()),
                message=message,
                note="; ".join(notes) or None,
            )
        )
    return rows


def format_status(
    daemons: Sequence[Mapping[str, Any]], status: Mapping[str, Any] | None, width: int = 160
) -> list[str]:
    """`autoscaler status`: who leads, then one block per policy (replicas
    current/ready/desired, deployment status, the last decision, its reasons and message,
    pauses and overrides)."""
    lines = []
    for d in daemons:
        role = d.get("role") or "unreachable"
        epoch = f" epoch {d['epoch']}" if d.get("epoch") is not None else ""
        error = f" ({d['error']})" if d.get("error") else ""
        lines.append(f"daemon {d.get('url')}: {role}{epoch}{error}")
    if status is None:
        lines.append("no daemon answered /status")
        return [line[:width] for line in lines]
    header = f"{'POLICY':<16} {'DEPLOYMENT':<20} {'STATUS':<12} {'REPLICAS':<10} LAST DECISION"
    lines += ["", header]
    for row in status_rows(status):
        replicas = f"{row.current}/{row.serving}/{num(row.desired, '{:d}')}"
        lines.append(
            f"{row.policy:<16} {row.deployment:<20} {row.status:<12} {replicas:<10} "
            f"{describe_decision(row)}"
        )
        if row.note:
            lines.append(f"{'':<16} {row.note}")
        if row.message:
            lines.append(f"{'':<16} {row.message}")
    lines.append("")
    lines.append("REPLICAS is current/ready/desired")
    return [line[:width] for line in lines]
