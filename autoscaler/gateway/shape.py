"""The few fields of an inference request the gateway checks itself before it holds or
forwards it: those OpenAI's API types strictly and a deployment would refuse anyway. A
request refused only by the deployment would first be held, and wake a deployment at zero,
for a 400 minutes later; this one is refused at once. Everything else (the model's context
length, sampling parameters, vendor extensions) is the deployment's to judge.

Pure: `problem(suffix, document) -> (param, message) | None`.
"""

from __future__ import annotations

from typing import Any


def problem(suffix: str, document: dict[str, Any]) -> tuple[str, str] | None:
    """(the field, what is wrong with it) for the first field of `document` (a JSON object
    whose `model` was checked already) that cannot be right for the endpoint `suffix`
    (`/chat/completions`, `/completions`, `/embeddings`); None when none is wrong."""
    stream = document.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return "stream", f"stream must be true or false, got {_kind(stream)}"
    options = document.get("stream_options")
    if options is not None and not isinstance(options, dict):
        return "stream_options", f"stream_options must be an object, got {_kind(options)}"
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = document.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return name, f"{name} must be a whole number, got {_kind(value)}"
    if suffix == "/chat/completions":
        messages = document.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages", f"messages must be a non-empty list, got {_kind(messages)}"
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                return "messages", f"messages[{i}] must be an object with a string role"
    return None


def _kind(value: Any) -> str:
    """How an error names a value of the wrong type: its JSON type (never the value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    return "an object"
