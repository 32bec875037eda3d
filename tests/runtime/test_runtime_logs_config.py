"""Logging: JSON lines off a TTY, console on one, level filter, UTC timestamps, redaction."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import structlog
from structlog.testing import LogCapture, capture_logs

from autoscaler.policy.model import LogConfig, SecretRef
from autoscaler.runtime.logs import REDACTED, configure_logging, redact_secrets, redact_text
from autoscaler.secrets import Secret

TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload.signature"


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_autoscaler", False):
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_when_not_a_tty() -> None:
    out = io.StringIO()
    assert configure_logging(LogConfig(), stream=out) == "json"
    structlog.get_logger().info(
        "decision", policy="chat", action="scale", replicas=4, reasons=("scale_up",)
    )
    [event] = lines(out)
    assert event["event"] == "decision"
    assert event["policy"] == "chat" and event["replicas"] == 4
    assert event["reasons"] == ["scale_up"]
    assert event["level"] == "info"
    stamp = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0)


def test_console_on_a_tty_and_forced_json_on_a_tty() -> None:
    tty = TtyStream()
    assert configure_logging(LogConfig(format="auto"), stream=tty) == "console"
    structlog.get_logger().info("started", policies=2)
    text = tty.getvalue()
    assert "started" in text and "policies" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])
    tty2 = TtyStream()
    assert configure_logging(LogConfig(format="json"), stream=tty2) == "json"
    structlog.get_logger().info("started")
    assert lines(tty2)[0]["event"] == "started"
    plain = io.StringIO()
    assert configure_logging(LogConfig(format="console"), stream=plain) == "console"
    structlog.get_logger().warning("odd")
    assert "\x1b[" not in plain.getvalue()  # no colours off a terminal


def test_level_filter() -> None:
    out = io.StringIO()
    configure_logging(LogConfig(level="warning"), stream=out)
    log = structlog.get_logger()
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [e["event"] for e in lines(out)] == ["w", "e"]


def test_library_records_share_the_shape_and_the_redaction() -> None:
    out = io.StringIO()
    configure_logging(LogConfig(level="info"), stream=out)
    logging.getLogger("somelib").warning("sent Authorization: Bearer %s", TOKEN)
    logging.getLogger("apscheduler.scheduler").info("Running job every 15s")  # quietened
    [event] = lines(out)
    assert event["logger"] == "somelib" and event["level"] == "warning"
    assert TOKEN not in out.getvalue()
    assert "Bearer ***" in str(event["event"])


def test_secrets_redacted_in_real_output() -> None:
    out = io.StringIO()
    configure_logging(LogConfig(level="debug"), stream=out)
    log = structlog.get_logger()
    log.info(
        "provider_call",
        token=TOKEN,
        admin_token="adm1n",
        password="hunter2",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
        credential=Secret("plain-secret-value"),
        url="redis://user:redispass@127.0.0.1:6379/0",
        message=f"401 from server, sent 'Bearer {TOKEN}'",
        key_ref=SecretRef(env="NEEV_TOKEN"),
        inference_key="sk-nc-abcdefghijkl12345",
        replicas=3,
    )
    try:
        raise RuntimeError(f"request failed with header Bearer {TOKEN}")
    except RuntimeError:
        log.exception("crashed")
    text = out.getvalue()
    for leaked in (TOKEN, "adm1n", "hunter2", "plain-secret-value", "redispass", "abcdefghijkl"):
        assert leaked not in text
    first, second = lines(out)
    assert first["token"] == REDACTED and first["password"] == REDACTED
    assert first["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert first["url"] == "redis://user:***@127.0.0.1:6379/0"
    assert first["replicas"] == 3
    assert "NEEV_TOKEN" in str(first["key_ref"])  # where a secret lives is fine to log
    assert "RuntimeError" in str(second["exception"])


def test_redaction_processor_in_a_chain() -> None:
    capture = LogCapture()
    log = structlog.wrap_logger(None, processors=[redact_secrets, capture])
    log.info("login", username="alice", api_key="k-123456789", detail=[{"secret": "x"}])
    [entry] = capture.entries
    assert entry["username"] == "alice"
    assert entry["api_key"] == REDACTED
    assert entry["detail"] == [{"secret": REDACTED}]


def test_capture_logs_sees_events_of_configured_loggers() -> None:
    configure_logging(LogConfig(), stream=io.StringIO())
    with capture_logs() as captured:
        structlog.get_logger().info("decision", policy="batch", action="delete", replicas=0)
    assert captured == [
        {
            "event": "decision",
            "policy": "batch",
            "action": "delete",
            "replicas": 0,
            "log_level": "info",
        }
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ("bearer   xyz", "bearer   ***"),
        ("no secrets here", "no secrets here"),
        ("amqp://guest:guest@localhost:5672/", "amqp://guest:***@localhost:5672/"),
        ("http://host:8080/path", "http://host:8080/path"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_console_tracebacks_are_redacted_too() -> None:
    out = io.StringIO()
    configure_logging(LogConfig(format="console"), stream=out)
    try:
        raise RuntimeError(f"upstream said: Authorization: Bearer {TOKEN}")
    except RuntimeError:
        structlog.get_logger().exception("crashed")
    text = out.getvalue()
    assert "RuntimeError" in text and "Traceback" in text
    assert TOKEN not in text
