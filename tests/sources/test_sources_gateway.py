"""The `gateway` source reading separate gateways' `/signals` over real HTTP.

Figures are summed over the gateways, so one gateway's bad figure must fail the whole read:
a -5 summed with another's 5 read as 0 held requests, "idle", and idle deletes.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from autoscaler.policy.model import GatewaySource
from autoscaler.sources import jsondoc
from autoscaler.sources.common import PARSE_INLINE, BadValueError
from autoscaler.sources.registry import build_source
from tests.sources.httpserver import Reply, serving

pytestmark = pytest.mark.anyio


def signals(**figures: Any) -> Reply:
    return Reply(json.dumps({"models": {"chat": figures}}), content_type="application/json")


async def read(first: Reply, second: Reply, signal: str = "held") -> float:
    with serving(a__signals=first, b__signals=second) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        spec = GatewaySource(urls=(base + "/a", base + "/b"), models=("chat",), signal=signal)
        src = build_source(spec, name="held")
        try:
            return await src.read()
        finally:
            await src.aclose()


async def test_figures_of_all_gateways_are_summed() -> None:
    assert await read(signals(held=2, in_flight=1), signals(held=3)) == 5.0


@pytest.mark.parametrize(
    ("signal", "first", "second", "match"),
    [
        ("held", {"held": -5}, {"held": 5}, "held -5 is negative"),
        ("ttft", {"ttft_sum": 4, "ttft_count": 2}, {"ttft_count": -2}, "ttft_count -2 is neg"),
        ("held", {"held": "7"}, {"held": 1}, "held '7' is not a number"),
        ("held", {"held": True}, {"held": 1}, "held True is not a number"),
        ("held", {"held": "NaN"}, {"held": 1}, "held 'NaN' is not a number"),
    ],
)
async def test_a_figure_that_cannot_be_load_fails_the_whole_read(
    signal: str, first: dict[str, Any], second: dict[str, Any], match: str
) -> None:
    with pytest.raises(BadValueError, match=match):
        await read(signals(**first), signals(**second), signal)


async def test_a_large_signals_document_is_parsed_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 1 MiB document of nested empty lists parses for ~0.6 s; on the event loop that
    # stalled every other policy's read.
    threads: list[int] = []
    real_loads = jsondoc.loads

    def loads(data: bytes | str) -> Any:
        threads.append(threading.get_ident())
        return real_loads(data)

    monkeypatch.setattr(jsondoc, "loads", loads)
    padding = ["x" * 1000] * (PARSE_INLINE // 1000 + 1)
    big = Reply(
        json.dumps({"models": {"chat": {"held": 2}}, "padding": padding}),
        content_type="application/json",
    )
    assert await read(big, signals(held=3)) == 5.0
    assert any(thread != threading.get_ident() for thread in threads)  # the large one
