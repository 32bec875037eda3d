"""The `http_json` source: GET a URL and read the number at a dotted path.

A path is keys and list indexes separated by dots: `data.queue.depth`, `items.0.n`. A key
with a dot in it cannot be addressed. The value must be a JSON number (booleans are not
numbers) or a string holding a finite decimal number (some APIs quote numbers) in ASCII
digits, nothing around it (`numbers.decimal`: not `"1_000"`, `" 7"`, `"٣"`); anything else,
a missing key, an index out of range or NaN/Infinity is a permanent error naming the path. A
negative number is a failed read (`BadValueError`): what is read here is load.

The body is read up to `max_body` bytes (1 MiB by default) and decoded strictly
(`jsondoc`): a key twice in one object, nesting deeper than 64 levels or an integer of more
than 100 digits is a failed read. A large body is parsed in a worker thread; `timeout` bounds
the whole read, parsing included. Path walking is `value_at_path` (pure).
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from autoscaler.policy.model import HttpJsonSource
from autoscaler.sources import jsondoc, numbers
from autoscaler.sources.base import PermanentSourceError
from autoscaler.sources.common import (
    bounded_read,
    clip,
    load_value,
    off_loop,
    redact_url,
    resolve_secret,
)
from autoscaler.sources.httpget import (
    http_get,
)


class JsonPathError(ValueError):
    pass


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "a number"


def value_at_path(document: Any, path: str) -> float:
    """The finite number at `path` in a decoded JSON document, or JsonPathError."""
    if not path or any(part == "" for part in path.split(".")):
        raise JsonPathError(f"path {path!r} has an empty part")
    current = document
    walked: list[str] = []
    for part in path.split("."):
        here = ".".join(walked) or "the top level"
        if isinstance(current, dict):
            if part not in current:
                keys = ", ".join(sorted(map(str, current))[:10]) or "none"
                raise JsonPathError(f"path {path}: no key {part!r} at {here} (keys: {keys})")
            current = current[part]
        elif isinstance(current, list):
            if not part.isdigit():
                raise JsonPathError(f"path {path}: {here} is a list; {part!r} is not an index")
            index = int(part)
            if index >= len(current):
                raise JsonPathError(
                    f"path {path}: index {index} is out of range at {here} (length {len(current)})"
                )
            current = current[index]
        else:
            raise JsonPathError(f"path {path}: {here} is {_kind(current)}, cannot take {part!r}")
        walked.append(part)
    if isinstance(current, bool) or not isinstance(current, int | float | str):
        raise JsonPathError(f"path {path}: value is {_kind(current)}, not a number")
    if isinstance(current, str):
        try:
            number = numbers.decimal(current)
        except numbers.NumberSyntaxError as exc:
            raise JsonPathError(f"path {path}: value {exc}") from None
    else:
        try:
            number = float(current)
        except OverflowError:
            raise JsonPathError(f"path {path}: value is too large") from None
    if not math.isfinite(number):
        raise JsonPathError(f"path {path}: value {number} is not a finite number")
    return number


class HttpJsonSourceReader:
    def __init__(
        self,
        spec: HttpJsonSource,
        *,
        name: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.spec = spec
        self.name = name
        self.describe = f"http_json {redact_url(spec.url)} path={spec.path}"
        self._client = httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(spec.timeout), follow_redirects=True
        )

    async def read(self) -> float:
        return await bounded_read(self.name, self.spec.timeout, self._read)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _read(self) -> float:
        headers = {"Accept": "application/json", **self.spec.headers}
        token = resolve_secret(self.name, self.spec.bearer_token, "bearer_token")
        if token is not None:
            headers["Authorization"] = f"Bearer {token.reveal()}"
        url = redact_url(self.spec.url)
        response = await http_get(
            self._client, self.name, self.spec.url, headers=headers, max_body=self.spec.max_body
        )
        body, path = response.content, self.spec.path
        del response  # keep no reference to a large body past the parse

        def parse() -> float:
            try:
                document = jsondoc.loads(body)
            except jsondoc.JsonDocError as exc:
                raise PermanentSourceError(
                    self.name, f"{url} did not answer with JSON: {clip(str(exc), 160)}"
                ) from None
            try:
                return value_at_path(document, path)
            except JsonPathError as exc:
                raise PermanentSourceError(self.name, f"{url}: {exc}") from None

        value = await off_loop(self.name, len(body), parse)
        return load_value(self.name, value, f"value at {path}")
