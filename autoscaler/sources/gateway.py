"""The `gateway` source: the gateway's traffic for some models (held, in flight, arrival
rate, time to first byte, tokens ...), summed over the source's models.

Without `urls` it reads the `SignalHub` of this process (the gateway inside the daemon, plus
the held counts separate gateways report with their activation requests): no request, no
scrape. With `urls` it GETs each separate gateway's `/signals?window=W` (JSON windows per
model) concurrently and sums them; a gateway that does not answer holds nothing (its held
requests died with it), so the read fails only when none answers. A gateway that answers
with a figure that cannot be load (negative, not finite, not a JSON number) fails the whole
read (`BadValueError`): summed with the others, one gateway's -5 would cancel another's 5 and
read as idle.
"""

from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import Any

import httpx

from autoscaler.gateway.signals import DEFAULT_HUB, SignalHub
from autoscaler.gateway.stats import Window, signal_value
from autoscaler.policy.model import GatewaySource
from autoscaler.sources import jsondoc
from autoscaler.sources.base import SourceError, TemporarySourceError
from autoscaler.sources.common import (
    BadValueError,
    bounded_read,
    clip,
    load_value,
    off_loop,
    redact_url,
)
from autoscaler.sources.httpget import (
    http_get,
)

SIGNALS_MAX_BODY = 1024 * 1024  # a /signals document is a few hundred bytes per model
WINDOW_FIELDS = frozenset(f.name for f in fields(Window))
DEFAULT_WINDOW = 60.0  # seconds, for a spec built outside a policy (a policy sets its interval)


class GatewaySignalSource:
    def __init__(
        self,
        spec: GatewaySource,
        *,
        name: str,
        hub: SignalHub | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.spec = spec
        self.name = name
        self.hub = hub if hub is not None else DEFAULT_HUB
        self.window = spec.window if spec.window is not None else DEFAULT_WINDOW
        where = ", ".join(redact_url(u) for u in spec.urls) or "in-process"
        self.describe = (
            f"gateway {spec.signal} models={','.join(spec.models)} window={self.window:g}s "
            f"({where})"
        )
        self._client = (
            httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(spec.timeout))
            if spec.urls
            else None
        )

    async def read(self) -> float:
        if self._client is None:
            windows = self.hub.windows(self.spec.models, self.window)
            return signal_value(windows, self.spec.signal, self.window)
        return await bounded_read(self.name, self.spec.timeout, self._read_remote)

    async def _read_remote(self) -> float:
        results = await asyncio.gather(
            *(self._read_one(url) for url in self.spec.urls), return_exceptions=True
        )
        windows: list[Window] = []
        errors: list[str] = []
        for result in results:
            if isinstance(result, BadValueError):
                raise result  # it answered, with garbage: its requests may well be alive
            if isinstance(result, BaseException):
                errors.append(
                    result.message if isinstance(result, SourceError) else clip(str(result))
                )
            else:
                windows.extend(result)
        if errors and len(errors) == len(results):
            raise TemporarySourceError(self.name, "no gateway answered: " + "; ".join(errors))
        return signal_value(windows, self.spec.signal, self.window)

    async def _read_one(self, url: str) -> list[Window]:
        assert self._client is not None
        target = url.rstrip("/") + "/signals"
        response = await http_get(
            self._client,
            self.name,
            target,
            params={"window": f"{self.window:g}"},
            max_body=SIGNALS_MAX_BODY,
        )
        content = response.content
        try:
            # Up to 1 MiB: a hostile one parses for most of a second, off the event loop.
            document = await off_loop(self.name, len(content), lambda: jsondoc.loads(content))
            models = document["models"]
            return [
                self._window(redact_url(target), m, models[m])
                for m in self.spec.models
                if m in models
            ]
        except SourceError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TemporarySourceError(
                self.name, f"{redact_url(target)}: not a gateway /signals document: {exc}"
            ) from None

    def _window(self, target: str, model: str, data: Any) -> Window:
        """One model's window, each figure a JSON number that can be load."""
        if not isinstance(data, dict):
            raise TypeError(f"model {model!r} is not an object")
        for key, value in data.items():
            if key in WINDOW_FIELDS:
                load_value(self.name, value, f"{target} model {model!r} {key}")
        return Window.from_json(data)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
