"""The demo's view: actions derived from the simulator's write log, the summary figures, and
the two drawing modes (ANSI redraw on a terminal, plain lines otherwise)."""

from __future__ import annotations

import io
from typing import Any

from autoscaler.demo.cli import policy_texts
from autoscaler.demo.view import (
    ActionEvent,
    ActionLog,
    LiveView,
    PolicyRow,
    format_summary,
    format_table,
)
from autoscaler.policy.loader import load_policy_text

BASE = "/api/v1beta1/orgs/o/projects/p/aimodels"


def write(
    method: str, path: str, body: Any = None, status: int | None = 200, t: float = 0.0
) -> dict[str, Any]:
    return {"t": t, "method": method, "path": path, "body": body, "status": status, "fault": None}


def test_action_log_classifies_writes() -> None:
    log = ActionLog({"batch-demo": "batch", "chat-demo": "chat"})
    ids = {"d1": "batch-demo", "d2": "batch-demo", "c1": "chat-demo"}
    entries = [
        write("POST", BASE, {"name": "batch-demo"}, 201),
        write("POST", "/api/v1/auth/login", {}, 200),  # not an action
        write("PUT", f"{BASE}/d1/scale", {"replicas": 3}),
        write("PUT", f"{BASE}/d1/scale", {"replicas": 1}),
        write("PUT", f"{BASE}/d1/scale", {"replicas": 2}, 503),  # failed: not an action
        write("DELETE", f"{BASE}/d1", None, 204),
        write("POST", BASE, {"name": "batch-demo"}, 201),
        write("POST", BASE, {"name": "chat-demo"}, 201),
        write("POST", BASE, {"name": "other"}, 201),  # not a demo policy
    ]
    reasons = {("batch", "delete"): ("idle_to_zero",), ("batch", "create"): ("activate_from_zero",)}
    events = log.feed(entries, ids, 12.0, lambda p, a: reasons.get((p, a), ()))
    assert [(e.policy, e.kind, e.replicas) for e in events] == [
        ("batch", "create", 1),
        ("batch", "scale_up", 3),
        ("batch", "scale_down", 1),
        ("batch", "delete", 0),
        ("batch", "recreate", 1),
        ("chat", "create", 1),
    ]
    assert events[3].reasons == ("idle_to_zero",)
    summary = log.to_json()["batch"]
    assert summary["deletes"] == 1 and summary["recreates"] == 1 and summary["creates"] == 2
    assert summary["scale_ups"] == 1 and summary["scale_downs"] == 1
    # Fed again with the same log: nothing new.
    assert log.feed(entries, ids, 13.0) == []


def test_action_log_waits_for_unfinished_and_unsettled_entries() -> None:
    log = ActionLog({"chat-demo": "chat"})
    entries = [write("POST", BASE, {"name": "chat-demo"}, None, t=1.0)]
    assert log.feed(entries, {}, 1.0) == []  # no response yet
    entries[0]["status"] = 201
    assert log.feed(entries, {}, 1.0, settled_before=0.5) == []  # too fresh
    assert [e.kind for e in log.feed(entries, {}, 2.0, settled_before=1.5)] == ["create"]


def test_replicas_seen_start_with_the_first_action() -> None:
    log = ActionLog({"chat-demo": "chat"})
    log.saw("chat", 0)  # before the daemon did anything: not counted
    log.feed([write("POST", BASE, {"name": "chat-demo"}, 201)], {}, 0.0)
    for n in (1, 4, 2):
        log.saw("chat", n)
    s = log.to_json()["chat"]
    assert (s["min_replicas"], s["max_replicas"]) == (1, 4)


def row(**kw: Any) -> PolicyRow:
    base: dict[str, Any] = dict(
        policy="chat",
        deployment="chat-demo",
        rate=8.0,
        waiting=12,
        running=20,
        status="ready",
        current=5,
        serving=5,
        desired=6,
        action="scale",
        reasons=("scale_up",),
        message="waiting=12 > 2/replica",
        note=None,
    )
    base.update(kw)
    return PolicyRow(**base)


def test_table_and_summary_text() -> None:
    lines = format_table(
        [
            row(),
            row(
                policy="batch",
                rate=None,
                waiting=None,
                running=None,
                status="absent",
                current=0,
                desired=None,
                action=None,
                reasons=(),
                message="",
            ),
        ]
    )
    assert "REPLICAS" in lines[0]
    assert "5/6" in lines[1] and "scale -> 6 [scale_up]" in lines[1]
    assert "waiting=12" in lines[2]
    assert "(no decision yet)" in lines[3] and "0/-" in lines[3]
    assert all(len(line) <= 120 for line in format_table([row(message="x" * 300)]))
    summary = {
        "batch": {
            "actions": {"delete": 1, "recreate": 1},
            "min_replicas": 0,
            "max_replicas": 3,
            "deletes": 1,
            "recreates": 1,
        }
    }
    text = "\n".join(format_summary(summary, wall_seconds=60, demo_seconds=60))
    assert "delete 1, recreate 1" in text and "min 0 max 3" in text


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tty_redraws_in_place() -> None:
    out = Tty()
    view = LiveView(out)
    assert view.tty
    view.frame(1.0, "header", [row()], [])
    first = out.getvalue()
    assert not first.startswith("\x1b[")
    drawn = first.count("\n")
    view.frame(2.0, "header", [row()], [ActionEvent(2.0, "chat", "scale_up", 6, ("scale_up",))])
    second = out.getvalue()[len(first) :]
    assert second.startswith(f"\x1b[{drawn}F\x1b[J")  # back over the previous block, cleared
    assert "scaled up to 6" in second


def test_plain_prints_events_and_periodic_lines() -> None:
    out = io.StringIO()
    view = LiveView(out, plain_every=5.0)
    assert not view.tty
    view.frame(0.0, "header", [row()], [])
    view.frame(1.0, "header", [row()], [ActionEvent(1.0, "chat", "delete", 0, ("idle_to_zero",))])
    view.frame(5.5, "header", [row()], [])
    lines = out.getvalue().splitlines()
    assert "\x1b[" not in out.getvalue()
    assert [line for line in lines if "deleted" in line] == [
        "t=   1.0s  chat: deleted: scaled to zero  [idle_to_zero]"
    ]
    assert len([line for line in lines if "load 8.0/s" in line]) == 2  # t=0 and t=5.5


def test_generated_policies_are_valid_and_scale_with_speed() -> None:
    for speed in (1.0, 4.0):
        texts = policy_texts("http://127.0.0.1:9/metrics", speed)
        chat = load_policy_text(texts["chat"], "chat.yaml")[0]
        batch = load_policy_text(texts["batch"], "batch.yaml")[0]
        assert chat.replicas.min == 1 and batch.replicas.min == 0
        assert batch.scale_to_zero is not None
        assert batch.scale_to_zero.after == 20.0 / speed
        assert chat.interval == 1.0 / speed
        assert batch.deployment.create is not None
