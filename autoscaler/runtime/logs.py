"""Logging setup for the daemon: structlog events, JSON lines or console, secrets redacted.

`configure_logging(LogConfig)` is called once at start (and again on reload when `log:`
changes). JSON lines go to journald / container logs; a person at a terminal gets the console
renderer. Library loggers (uvicorn, apscheduler, ...) are routed through the same processors
so every line has one shape. `redact_secrets` is the processor that keeps credentials out of
logs; it lives here so every renderer gets it. Nothing here decides what to log.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from autoscaler.policy.model import LogConfig, SecretRef
from autoscaler.secrets import Secret

REDACTED = "***"

# Field names whose values are credentials, whatever they hold.
SECRET_KEYS = frozenset(
    {"token", "password", "secret", "authorization", "admin_token", "api_key", "apikey"}
)
SECRET_SUFFIXES = ("_token", "_password", "_secret", "_api_key")

# Credentials that can hide inside ordinary strings (a header echoed in an error, a URL).
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+")
_API_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@")

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# Chatty libraries: their INFO lines are per request / per job run.
_QUIET_LIBRARIES = ("apscheduler", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx")


def is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    name = key.lower().replace("-", "_")
    return name in SECRET_KEYS or name.endswith(SECRET_SUFFIXES)


def redact_text(text: str) -> str:
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _API_KEY.sub(REDACTED, text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


def redact_value(value: Any) -> Any:
    if isinstance(value, Secret | SecretRef):
        # A SecretRef only says where a credential lives; keep that, it helps debugging.
        return value if isinstance(value, SecretRef) else REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(k) else redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, BaseException):
        # Exceptions are rendered later from exc_info; their message may carry a header.
        return redact_text(str(value))
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: credentials out of every field (by key name, by type, by shape)."""
    for key, value in list(event_dict.items()):
        if key == "exc_info":
            continue
        event_dict[key] = REDACTED if is_secret_key(key) else redact_value(value)
    return event_dict


def _redact_rendered_exception(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """After tracebacks are rendered to text, scrub them too."""
    for key in ("exception", "stack"):
        if isinstance(event_dict.get(key), str):
            event_dict[key] = redact_text(event_dict[key])
    return event_dict


def shared_processors() -> list[Processor]:
    """Everything before rendering; also used for stdlib (library) records."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        redact_secrets,
    ]


def choose_format(config: LogConfig, stream: TextIO) -> str:
    if config.format != "auto":
        return config.format
    isatty = getattr(stream, "isatty", None)
    return "console" if callable(isatty) and isatty() else "json"


def renderer(fmt: str, stream: TextIO) -> list[Processor]:
    if fmt == "json":
        return [
            structlog.processors.format_exc_info,
            _redact_rendered_exception,
            structlog.processors.JSONRenderer(default=str, sort_keys=False),
        ]
    isatty = getattr(stream, "isatty", None)
    colors = bool(callable(isatty) and isatty())
    return [
        structlog.processors.format_exc_info,  # to text first, so it can be redacted
        _redact_rendered_exception,
        structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        ),
    ]


def configure_logging(config: LogConfig, *, stream: TextIO | None = None) -> str:
    """Configure structlog (and the stdlib root logger) from `log:`; returns the format used
    ("json" or "console")."""
    out = stream if stream is not None else sys.stderr
    fmt = choose_format(config, out)
    level = LEVELS[config.level]
    render = renderer(fmt, out)

    structlog.configure(
        processors=[*shared_processors(), *render],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,  # configure_logging runs again on reload
    )

    # Library records (uvicorn, apscheduler, asyncio) in the same shape, same stream.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared_processors()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_autoscaler", False):
            root.removeHandler(old)
    handler._autoscaler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return fmt
