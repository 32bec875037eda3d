"""The test helpers' own promises: free ports handed to one test process never repeat."""

from __future__ import annotations

from tests.services import free_port


def test_free_ports_are_never_handed_out_twice() -> None:
    # 500 picks from ~28,000 ephemeral ports would repeat a few times if each pick were
    # independent; two servers of one test given the same port refuse to start.
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
