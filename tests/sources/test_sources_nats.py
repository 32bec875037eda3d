"""The `nats` source against the machine's NATS JetStream (4222) and a nats-server of our own
(token auth, free port) for wrong credentials and server down / back."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from autoscaler.policy.model import NatsSource, SecretRef
from autoscaler.sources.base import PermanentSourceError, TemporarySourceError
from autoscaler.sources.registry import build_source
from tests.services import free_port, port_open, require, require_tcp

pytestmark = pytest.mark.anyio
URL = "nats://127.0.0.1:4222"


@pytest.fixture
async def js() -> AsyncIterator[nats.js.JetStreamContext]:
    require_tcp("NATS", 4222)
    nc = await nats.connect(URL)
    context = nc.jetstream()
    streams: list[str] = []
    context.test_streams = streams  # type: ignore[attr-defined]
    yield context
    for name in streams:
        await context.delete_stream(name)
    await nc.close()


async def new_stream(js, messages: int) -> tuple[str, str]:
    name = f"AUTOSCALER_TEST_{uuid.uuid4().hex[:8].upper()}"
    subject = f"autoscaler.test.{name.lower()}"
    js.test_streams.append(name)
    await js.add_stream(name=name, subjects=[subject])
    await js.add_consumer(
        name, ConsumerConfig(durable_name="workers", ack_policy=AckPolicy.EXPLICIT, ack_wait=60)
    )
    for i in range(messages):
        await js.publish(subject, str(i).encode())
    return name, subject


async def test_pending_and_ack_pending(js) -> None:
    stream, _subject = await new_stream(js, 9)
    pending = build_source(NatsSource(url=URL, stream=stream, consumer="workers"), name="q")
    both = build_source(
        NatsSource(url=URL, stream=stream, consumer="workers", include_ack_pending=True), name="q"
    )
    assert await pending.read() == 9.0
    sub = await js.pull_subscribe_bind("workers", stream=stream)
    fetched = await sub.fetch(4, timeout=2)
    assert len(fetched) == 4
    assert await pending.read() == 5.0  # delivered messages are no longer pending
    assert await both.read() == 9.0  # ...but are ack-pending until acknowledged
    for msg in fetched[:3]:
        await msg.ack_sync()
    assert await both.read() == 6.0
    await pending.aclose()
    await both.aclose()


async def test_missing_stream_and_consumer(js) -> None:
    src = build_source(
        NatsSource(url=URL, stream="AUTOSCALER_NO_SUCH_STREAM", consumer="c"), name="q"
    )
    with pytest.raises(
        PermanentSourceError, match="stream 'AUTOSCALER_NO_SUCH_STREAM' does not exist"
    ):
        await src.read()
    await src.aclose()
    stream, _ = await new_stream(js, 0)
    src = build_source(NatsSource(url=URL, stream=stream, consumer="nobody"), name="q")
    with pytest.raises(PermanentSourceError, match="consumer 'nobody' does not exist"):
        await src.read()
    await src.aclose()


class OwnNats:
    def __init__(self, token: str = "nats-token") -> None:
        self.port = free_port()
        self.token = token
        self.store = tempfile.mkdtemp(prefix="autoscaler-nats-")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "nats-server",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                self.store,
                "--auth",
                self.token,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            if port_open("127.0.0.1", self.port, timeout=0.1):
                return
            subprocess.run(["sleep", "0.05"], check=False)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_nats() -> Iterator[OwnNats]:
    require(shutil.which("nats-server") is not None, "the nats-server binary")
    server = OwnNats()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.store, ignore_errors=True)


async def test_wrong_token_then_down_then_back(own_nats: OwnNats, monkeypatch) -> None:
    url = f"nats://127.0.0.1:{own_nats.port}"
    nc = await nats.connect(url, token=own_nats.token)
    js = nc.jetstream()
    await js.add_stream(name="JOBS", subjects=["jobs"])
    await js.add_consumer("JOBS", ConsumerConfig(durable_name="w", ack_policy=AckPolicy.EXPLICIT))
    await js.publish("jobs", b"1")
    await nc.close()
    monkeypatch.setenv("AUTOSCALER_TEST_NATS_TOKEN", "wrong-token")
    spec = NatsSource(
        url=url,
        stream="JOBS",
        consumer="w",
        timeout=2,
        token=SecretRef(env="AUTOSCALER_TEST_NATS_TOKEN"),
    )
    src = build_source(spec, name="q")
    with pytest.raises(PermanentSourceError, match="credentials refused") as info:
        await src.read()
    assert "wrong-token" not in str(info.value)
    monkeypatch.setenv("AUTOSCALER_TEST_NATS_TOKEN", own_nats.token)
    assert await src.read() == 1.0
    own_nats.stop()
    with pytest.raises(TemporarySourceError):
        await src.read()
    own_nats.start()  # same port and store dir: the stream survives
    for _ in range(50):  # JetStream needs a moment to restore the stream after start
        try:
            value = await src.read()
            break
        except TemporarySourceError:
            await anyio.sleep(0.1)
    assert value == 1.0
    await src.aclose()


async def test_nothing_listening() -> None:
    src = build_source(
        NatsSource(url=f"nats://127.0.0.1:{free_port()}", stream="S", consumer="c", timeout=2),
        name="q",
    )
    with pytest.raises(TemporarySourceError, match="cannot connect"):
        await src.read()
    await src.aclose()


async def test_slow_dropped_then_back_through_a_proxy(js) -> None:
    """A TCP proxy in front of the real server: after a stall or a cut connection the next
    read reconnects and gives the current count."""
    from tests.sources.tcpproxy import TcpProxy

    stream, subject = await new_stream(js, 1)
    proxy = TcpProxy(4222).start()
    src = build_source(
        NatsSource(
            url=f"nats://127.0.0.1:{proxy.port}", stream=stream, consumer="workers", timeout=0.5
        ),
        name="q",
    )
    try:
        assert await src.read() == 1.0
        proxy.stall()
        await js.publish(subject, b"2")
        with pytest.raises(TemporarySourceError, match="timeout"):
            await src.read()
        proxy.resume()
        assert await src.read() == 2.0
        proxy.drop_all()
        await js.publish(subject, b"3")
        # The cut is either met by this read (a temporary error) or noticed before it (the
        # read reconnects): never a wrong number.
        try:
            assert await src.read() == 3.0
        except TemporarySourceError:
            pass
        assert await src.read() == 3.0
    finally:
        proxy.stop()
        await src.aclose()
