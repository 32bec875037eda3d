"""Two gateway processes in front of two daemons on one PostgreSQL database (one leader, one
standby), with the NeevCloud simulator. The leader is SIGKILLed and requests arrive at both
gateways at once, while the deployment is at zero: the gateways hold them and keep asking
(the dead leader refuses the connection, the standby refuses until it leads), the standby
takes over, sees the held demand, creates the deployment once, and every request is answered.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.test_gateway_daemon import (
    _config,
    _gateway_process,
    _gateway_section,
    _metric,
    _post_in_thread,
    _ready,
    _stop,
)
from tests.runtime.daemon_support import sim_server, start_daemon_process, wait_for
from tests.runtime.test_runtime_ha_harness import Database, require_services
from tests.services import free_port

pytestmark = pytest.mark.slow


def _role(url: str) -> str | None:
    try:
        return httpx.get(url + "/readyz", timeout=2).json().get("role")  # type: ignore[no-any-return]
    except (httpx.HTTPError, ValueError):
        return None


def test_two_gateways_standby_takes_over_while_requests_are_held(tmp_path: Path) -> None:
    require_services()
    db = Database().create()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with sim_server(provision_seconds=1.0) as sim:
            daemons: list[tuple[str, Path]] = []
            for i in range(2):
                port = free_port()
                config = _config(tmp_path / f"d{i}", sim.url, http_port=port, state=db.dsn())
                daemons.append((f"http://127.0.0.1:{port}", config))
            procs = [
                start_daemon_process(config, log=tmp_path / f"daemon{i}.log")
                for i, (_, config) in enumerate(daemons)
            ]
            processes.extend(procs)
            wait_for(
                lambda: sorted(str(_role(url)) for url, _ in daemons) == ["leader", "standby"],
                90,
                "one leader and one standby",
            )
            urls = [url for url, _ in daemons]
            gateways = []
            for g in range(2):
                port = free_port()
                folder = tmp_path / f"g{g}"
                config = _config(
                    folder,
                    sim.url,
                    http_port=free_port(),
                    state=db.dsn(),
                    gateway=_gateway_section(port, folder, urls),
                )
                processes.append(_gateway_process(config, tmp_path / f"gateway{g}.log"))
                gateways.append(f"http://127.0.0.1:{port}")
            for gw in gateways:
                wait_for(lambda gw=gw: _ready(gw + "/healthz"), 60, "gateway up")

            leader = next(i for i, (url, _) in enumerate(daemons) if _role(url) == "leader")
            procs[leader].send_signal(signal.SIGKILL)
            procs[leader].wait(10)
            results: list[Any] = []
            threads = [_post_in_thread(gw, results) for gw in gateways for _ in range(2)]
            for thread in threads:
                thread.join(150)
            assert len(results) == 4
            for answer in results:
                assert isinstance(answer, httpx.Response), answer
                assert answer.status_code == 200, answer.text
            standby_url = daemons[1 - leader][0]
            assert _role(standby_url) == "leader"
            snap = sim.snapshot()
            assert snap["names_held_twice"] == []
            assert len(sim.current("chat-gw")) == 1
            created = [d for d in snap["deployments"] if d["name"] == "chat-gw"]
            assert len(created) == 1, "one create for the held demand of both gateways"
            refused = sum(
                _metric(gw, "autoscaler_gateway_activations_total", model="chat", result="refused")
                for gw in gateways
            )
            assert refused >= 1, "held while no daemon could act (the takeover)"
            for gw in gateways:
                accepted = _metric(
                    gw, "autoscaler_gateway_activations_total", model="chat", result="accepted"
                )
                assert accepted >= 1
                assert (
                    _metric(
                        gw, "autoscaler_gateway_requests_total", model="chat", outcome="answered"
                    )
                    == 2
                )
    finally:
        for process in processes:
            _stop(process)
        db.drop()
