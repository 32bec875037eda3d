"""Failures explain themselves in /status (issue 14 §5): per policy and metric, the last error
of each source with its time (ISO 8601) and how many reads in a row failed; per provider, the
last error with its time, cleared when the provider answers again."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.runtime.daemon_support import await_for, sim_server
from tests.runtime.test_runtime_loop_faults import Depth, evaluations, http_policy, running
from tests.sources.httpserver import serving

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _iso(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_source_and_provider_errors_show_with_time_and_count(tmp_path: Path) -> None:
    depth = Depth(10)
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        src.routes["/depth"] = depth.reply
        sim.create("shown")
        async with running(tmp_path, sim, http_policy("shown", src.url("/depth"))) as daemon:
            await await_for(lambda: evaluations(daemon, "shown") >= 2, 30, "evaluations")
            fine = daemon.status()["policies"]["shown"]["sources"]["queue"]
            assert fine == {"last_error": None, "last_error_at": None, "failures_in_a_row": 0}

            depth.down = True
            await await_for(
                lambda: (
                    daemon.status()["policies"]["shown"]["sources"]["queue"]["failures_in_a_row"]
                    >= 3
                ),
                30,
                "three failed reads in a row",
            )
            queue = daemon.status()["policies"]["shown"]["sources"]["queue"]
            assert "503" in queue["last_error"], queue
            _iso(queue["last_error_at"])
            depth.down = False
            await await_for(
                lambda: (
                    daemon.status()["policies"]["shown"]["sources"]["queue"]["failures_in_a_row"]
                    == 0
                ),
                30,
                "reads succeed again",
            )
            queue = daemon.status()["policies"]["shown"]["sources"]["queue"]
            assert "503" in queue["last_error"]  # the last error stays, with its time

            sim.faults(error_rate=1.0, error_status=503)
            await await_for(
                lambda: daemon.status()["providers"]["sim"]["last_error"], 30, "provider error"
            )
            provider = daemon.status()["providers"]["sim"]
            assert provider["last_error"]["status"] == 503
            _iso(provider["last_error"]["t"])
            assert provider["failures_in_a_row"] >= 1
            assert provider["policies"] == ["shown"]
            sim.faults(error_rate=0.0)
            await await_for(
                lambda: daemon.status()["providers"]["sim"]["last_error"] is None,
                30,
                "provider error cleared",
            )
            assert daemon.status()["providers"]["sim"]["failures_in_a_row"] == 0
