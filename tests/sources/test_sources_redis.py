"""The `redis` source against the machine's Redis (6379) and a redis-server of our own.

Our own server (free port, `--requirepass`, debug commands on) covers the outages: wrong
password, server down and back, a slow server (`DEBUG SLEEP`) and a connection killed
mid-session (`CLIENT KILL`).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from autoscaler.policy.model import RedisSource, SecretRef
from autoscaler.sources.base import PermanentSourceError, TemporarySourceError
from autoscaler.sources.registry import build_source
from tests.services import free_port, port_open, require, require_tcp

pytestmark = pytest.mark.anyio
URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    require_tcp("Redis", 6379)
    c = aioredis.Redis.from_url(URL)
    keys: list[str] = []
    c.test_keys = keys  # type: ignore[attr-defined]
    yield c
    if keys:
        await c.delete(*keys)
    await c.aclose()


def key(client: aioredis.Redis, kind: str) -> str:
    name = f"autoscaler-test:{kind}:{uuid.uuid4().hex[:10]}"
    client.test_keys.append(name)  # type: ignore[attr-defined]
    return name


async def read(**fields) -> float:
    src = build_source(RedisSource(url=fields.pop("url", URL), **fields), name="backlog")
    try:
        return await src.read()
    finally:
        await src.aclose()


async def test_list_length(client) -> None:
    k = key(client, "list")
    assert await read(key=k) == 0.0  # a missing list is an empty queue
    await client.rpush(k, *range(7))
    src = build_source(RedisSource(url=URL, key=k), name="backlog")
    assert await src.read() == 7.0
    await client.lpop(k, 2)
    assert await src.read() == 5.0  # same client, reused
    await src.aclose()


async def test_stream_length_pending_and_lag(client) -> None:
    k = key(client, "stream")
    for i in range(10):
        await client.xadd(k, {"n": i})
    await client.xgroup_create(k, "workers", id="0")
    await client.xreadgroup("workers", "c1", {k: ">"}, count=4)
    assert await read(key=k, mode="stream") == 10.0
    assert await read(key=k, mode="pending", group="workers") == 4.0
    assert await read(key=k, mode="lag", group="workers") == 6.0
    entries = await client.xrange(k)
    await client.xack(k, "workers", entries[0][0], entries[1][0])
    assert await read(key=k, mode="pending", group="workers") == 2.0


async def test_lag_is_counted_when_redis_reports_null(client) -> None:
    k = key(client, "stream")
    ids = [await client.xadd(k, {"n": i}) for i in range(2500)]
    # A group created at an arbitrary id: Redis cannot tell its lag and reports null.
    await client.xgroup_create(k, "late", id=ids[99])
    (group,) = [g for g in await client.xinfo_groups(k) if g["name"] == b"late"]
    assert group["lag"] is None
    assert await read(key=k, mode="lag", group="late") == 2400.0
    # Deleting entries also makes the lag unknown for an existing group.
    await client.xgroup_create(k, "early", id="0")
    await client.xreadgroup("early", "c", {k: ">"}, count=500)
    await client.xdel(k, ids[1000], ids[2000])
    (group,) = [g for g in await client.xinfo_groups(k) if g["name"] == b"early"]
    assert group["lag"] is None
    assert await read(key=k, mode="lag", group="early") == 2500 - 500 - 2


async def test_wrong_type_missing_group_missing_stream(client) -> None:
    k = key(client, "string")
    await client.set(k, "x")
    with pytest.raises(PermanentSourceError, match=r"holds a string, not a list"):
        await read(key=k)
    with pytest.raises(PermanentSourceError, match=r"holds a string, not a stream"):
        await read(key=k, mode="stream")
    s = key(client, "stream")
    await client.xadd(s, {"n": 1})
    with pytest.raises(PermanentSourceError, match="group 'nope'"):
        await read(key=s, mode="pending", group="nope")
    with pytest.raises(PermanentSourceError, match="no consumer group 'nope'"):
        await read(key=s, mode="lag", group="nope")
    missing = key(client, "missing")
    with pytest.raises(PermanentSourceError, match="does not exist"):
        await read(key=missing, mode="lag", group="g")
    with pytest.raises(PermanentSourceError, match='missing required parameter "group"'):
        build_source(RedisSource(url=URL, key=s, mode="lag"), name="backlog")


# --- our own redis-server for outages ----------------------------------------------------------


class OwnRedis:
    def __init__(self, password: str = "s3cret") -> None:
        self.port = free_port()
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--requirepass",
                self.password,
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "local",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            if port_open("127.0.0.1", self.port, timeout=0.1):
                return
            if self.proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.05"], check=False)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    require(shutil.which("redis-server") is not None, "the redis-server binary")
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


async def test_wrong_password_then_right(own_redis: OwnRedis, monkeypatch) -> None:
    monkeypatch.setenv("AUTOSCALER_TEST_REDIS_PW", "wrong-one")
    spec = RedisSource(
        url=own_redis.url, key="q", password=SecretRef(env="AUTOSCALER_TEST_REDIS_PW")
    )
    src = build_source(spec, name="backlog")
    with pytest.raises(PermanentSourceError, match="backlog: credentials refused") as info:
        await src.read()
    assert "wrong-one" not in str(info.value)
    # The credential is resolved again after a refusal: fixing it needs no restart.
    monkeypatch.setenv("AUTOSCALER_TEST_REDIS_PW", own_redis.password)
    assert await src.read() == 0.0
    await src.aclose()
    no_password = build_source(RedisSource(url=own_redis.url, key="q"), name="backlog")
    with pytest.raises(PermanentSourceError, match="wants a password and none is set"):
        await no_password.read()
    await no_password.aclose()


async def test_down_then_back_and_killed_connection(own_redis: OwnRedis) -> None:
    url = f"redis://:{own_redis.password}@127.0.0.1:{own_redis.port}/0"
    src = build_source(RedisSource(url=url, key="q", timeout=2), name="backlog")
    assert await src.read() == 0.0
    own_redis.stop()
    with pytest.raises(TemporarySourceError, match="cannot reach Redis") as info:
        await src.read()
    assert own_redis.password not in str(info.value) and "***" in str(info.value)
    own_redis.start()
    admin = aioredis.Redis.from_url(url)
    await admin.rpush("q", 1, 2, 3)
    assert await src.read() == 3.0
    # Kill our source's connection from the server side: one temporary error, then fine.
    await admin.client_kill_filter(_type="normal", skipme=True)
    await admin.rpush("q", 4)
    # The kill is either met by this read (a temporary error) or noticed by the pool before
    # it (redis-py reconnects): never a wrong number.
    try:
        assert await src.read() == 4.0
    except TemporarySourceError as exc:
        assert "cannot reach Redis" in str(exc)
    assert await src.read() == 4.0
    await admin.aclose()
    await src.aclose()


async def test_slow_server_times_out_then_recovers(own_redis: OwnRedis) -> None:
    url = f"redis://:{own_redis.password}@127.0.0.1:{own_redis.port}/0"
    src = build_source(RedisSource(url=url, key="q", timeout=0.3), name="backlog")
    assert await src.read() == 0.0
    admin = aioredis.Redis.from_url(url)
    sleeper = subprocess.Popen(
        [
            "redis-cli",
            "-p",
            str(own_redis.port),
            "-a",
            own_redis.password,
            "--no-auth-warning",
            "DEBUG",
            "SLEEP",
            "1.5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await _until_busy(admin)
        with pytest.raises(TemporarySourceError, match=r"in time|timeout"):
            await src.read()
    finally:
        sleeper.wait(10)
    assert await src.read() == 0.0
    await admin.aclose()
    await src.aclose()


async def _until_busy(admin: aioredis.Redis) -> None:
    """Wait until the server stops answering (DEBUG SLEEP has started)."""
    import anyio

    for _ in range(100):
        try:
            with anyio.fail_after(0.1):
                await admin.ping()
        except TimeoutError:
            return
        await anyio.sleep(0.01)
