"""scripts/: the test and service scripts only ever start things; they never stop, restart or
kill a process (the machine may be shared, and a service they did not start is not theirs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "scripts").glob("*.sh"))
STOPPING = re.compile(
    r"\b(pkill|killall|kill\s|systemctl\s+(stop|restart|kill)|service\s+\S+\s+(stop|restart)"
    r"|pg_ctlcluster\s+\S*\s*\S*\s*(stop|restart)|rabbitmqctl\s+stop|redis-cli\s+shutdown)"
)


def test_there_are_scripts() -> None:
    assert {p.name for p in SCRIPTS} >= {"test.sh", "services.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_script_never_stops_or_kills_a_process(script: Path) -> None:
    code = [line for line in script.read_text().splitlines() if not line.lstrip().startswith("#")]
    found = [line for line in code if STOPPING.search(line)]
    assert found == [], f"{script.name} stops or kills processes: {found}"
