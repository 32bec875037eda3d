"""`autoscaler replay` under fuzzed input: zero tracebacks, only the documented exit codes.

The CLI entry (`autoscaler.cli:main`) runs in-process over mutations of the bundled
observations (and of the bundled policies): values swapped for hostile ones (`1e400`,
integers over 4,300 digits, deep nesting, duplicate keys, `t` of `1e12` with a schedule),
truncations, junk bytes, lines out of order. Seeded and bounded by count, so a failure
reproduces. Exit codes (README, `replay` docstring): 0 replayed, 1 a bad line or policy.
Before the fix, 198 of 2,514 such inputs printed a traceback.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from autoscaler.cli import main

ROOT = Path(__file__).resolve().parents[2]
POLICIES = [
    (ROOT / "examples" / "replay" / "policy.yaml", None),
    (ROOT / "policies" / "business-hours.yaml", None),  # schedules: `t` becomes a date
    (ROOT / "tests" / "core" / "data" / "two-policies.yaml", "fast"),
]
OBSERVATIONS = [
    ROOT / "examples" / "replay" / "observations.jsonl",
    ROOT / "tests" / "core" / "data" / "burst.jsonl",
]
EXIT_CODES = {0, 1}

HOSTILE = [
    "1e400",
    "-1e400",
    "1e12",
    "-1e308",
    "1e308",
    "9" * 5000,
    "-" + "9" * 4301,
    "9" * 100,
    "18446744073709551616",
    "NaN",
    "Infinity",
    "-Infinity",
    "-1",
    "-0.0",
    "0.5",
    "true",
    "null",
    '"ready"',
    '"\\ud800"',
    '"' + "x" * 100_000 + '"',
    "[" * 10_000 + "]" * 10_000,
    '{"a": ' * 200 + "1" + "}" * 200,
    "[]",
    "{}",
    '{"waiting": 1, "waiting": 0}',
    '{"waiting": ' + "[" * 100 + "]" * 100 + "}",
    '{"waiting": 1e400}',
    '{"waiting": -5}',
    "32503680000",
    "32503680001",
]
VALUE = re.compile(r'("(?:t|replicas|status|metrics|ready_replicas|waiting|kv_cache)": )([^,}]+)')


def mutate_line(line: str, rng: random.Random) -> str:
    edit = rng.randrange(7)
    if edit <= 2:  # a value replaced by a hostile one
        spots = list(VALUE.finditer(line))
        if spots:
            spot = rng.choice(spots)
            return line[: spot.start(2)] + rng.choice(HOSTILE) + line[spot.end(2) :]
    if edit == 3:
        return line[: rng.randrange(len(line) + 1)]
    if edit == 4:  # a key twice
        return line.replace('{"t": ', '{"t": 1, "t": ', 1)
    if edit == 5:
        i = rng.randrange(len(line) + 1)
        return line[:i] + rng.choice(["\x00", "\\", '"', "{", "]", ",", "é", "\u2028"]) + line[i:]
    return rng.choice(HOSTILE)


def mutate_file(text: str, rng: random.Random) -> bytes:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        lines[index] = mutate_line(lines[index], rng)
    if rng.random() < 0.1:
        rng.shuffle(lines)  # `t` goes backwards
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    if rng.random() < 0.05:
        data += rng.randbytes(64)  # not UTF-8
    return data


def run_replay(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    try:
        code = main(["replay", *args])
    except BaseException as exc:  # any escape is the traceback we look for
        raise AssertionError(f"replay {args} raised {type(exc).__name__}: {exc}") from exc
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check(code: int, out: str, err: str, prefix: str, inputs: object) -> None:
    assert code in EXIT_CODES, (code, err, inputs)
    assert "Traceback" not in err and "Traceback" not in out, inputs
    for line in out.splitlines():
        json.loads(line)
    if code == 1:
        assert err, inputs
        for line in err.splitlines():
            assert line.startswith(prefix) and re.match(r".*?:\d+(:\d+)?: ", line), (line, inputs)


def test_fuzzed_observations_never_print_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(2514)
    texts = [p.read_text() for p in OBSERVATIONS]
    obs = tmp_path / "obs.jsonl"
    failures_seen = 0
    for _ in range(400):
        policy, name = rng.choice(POLICIES)
        data = mutate_file(rng.choice(texts), rng)
        obs.write_bytes(data)
        args = ["--policy", str(policy), "--observations", str(obs)]
        if name is not None:
            args += ["--name", name]
        code, out, err = run_replay(capsys, args)
        check(code, out, err, f"{obs}:", data[:300])
        failures_seen += code == 1
    assert failures_seen > 100, "the mutations should mostly make bad lines"


def test_fuzzed_policies_for_replay_never_print_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(14)
    text = (ROOT / "examples" / "replay" / "policy.yaml").read_text()
    numbers = list(re.finditer(r"(?<=: )[0-9][0-9a-z.]*", text))
    obs = OBSERVATIONS[0]
    policy = tmp_path / "policy.yaml"
    for _ in range(150):
        spot = rng.choice(numbers)
        hostile = rng.choice([*HOSTILE, "*x", "&x [*x, *x]", "!!python/object:os.system", "{"])
        mutated = text[: spot.start()] + hostile + text[spot.end() :]
        if rng.random() < 0.3:
            mutated = mutated[: rng.randrange(len(mutated) + 1)]
        policy.write_text(mutated, encoding="utf-8", errors="surrogatepass")
        code, out, err = run_replay(capsys, ["--policy", str(policy), "--observations", str(obs)])
        check(code, out, err, f"{policy}:", mutated[:300])
