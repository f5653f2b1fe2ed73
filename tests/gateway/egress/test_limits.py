"""THREATS E7: huge or endless bodies and slow upstreams end with a clear error."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.egress.fakes import MakeClient, MiB, Upstream, admitting, get, refused

GiB = 1024 * MiB


def rss_bytes() -> int:
    """This process's resident set size, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_e7_one_gigabyte_body_is_cut_off_with_low_memory(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream))
    before = rss_bytes()
    started = time.monotonic()
    error = await refused(
        get(client, f"{upstream.origin}/stream?bytes={GiB}", max_body_bytes=10 * MiB)
    )
    assert error.code == "response_too_large"
    assert "larger than 10485760 bytes" in error.message
    assert time.monotonic() - started < 10
    assert rss_bytes() - before < 50 * MiB
    assert error.trace[-1].status == 200
    assert error.trace[-1].error == "response_too_large"


async def test_e7_declared_length_over_the_cap_fails_before_reading(
    make_client: MakeClient, upstream: Upstream
) -> None:
    client = make_client(admitting(upstream))
    url = f"{upstream.origin}/stream?bytes={GiB}&declare=1"
    error = await refused(get(client, url, max_body_bytes=MiB))
    assert error.code == "response_too_large"


async def test_e7_body_at_the_cap_is_fine(make_client: MakeClient, upstream: Upstream) -> None:
    client = make_client(admitting(upstream))
    response = await get(client, f"{upstream.origin}/stream?bytes={MiB}", max_body_bytes=MiB)
    assert len(response.body) == MiB


async def test_e7_slow_upstream_times_out(make_client: MakeClient, upstream: Upstream) -> None:
    client = make_client(admitting(upstream), total_timeout=0.5)
    started = time.monotonic()
    error = await refused(get(client, f"{upstream.origin}/slow?seconds=30"))
    assert error.code == "upstream_timeout"
    assert "did not answer within 0.5 s" in error.message
    assert time.monotonic() - started < 3
    assert error.trace[-1].error == "upstream_timeout"


async def test_e7_stalled_body_times_out(make_client: MakeClient, upstream: Upstream) -> None:
    client = make_client(admitting(upstream), total_timeout=0.5)
    started = time.monotonic()
    error = await refused(get(client, f"{upstream.origin}/slow?seconds=30&stall_body=1"))
    assert error.code == "upstream_timeout"
    assert time.monotonic() - started < 3


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose accept queue is full, so a new connect hangs."""
    with socket.socket() as server, socket.socket() as filler:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        filler.connect(server.getsockname())  # takes the one queue slot
        yield server.getsockname()[1]


async def test_e7_connect_timeout(make_client: MakeClient, unanswered_port: int) -> None:
    policy = admitting(Upstream(port=unanswered_port))
    client = make_client(policy, connect_timeout=0.3, total_timeout=5)
    started = time.monotonic()
    error = await refused(get(client, f"http://127.0.0.1:{unanswered_port}/"))
    assert error.code == "upstream_timeout"
    assert error.message == "connecting to host 127.0.0.1 timed out"
    assert time.monotonic() - started < 3


async def test_unreachable_upstream_names_the_host_not_the_headers(
    make_client: MakeClient,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connection refused
        client = make_client(admitting(Upstream(port=port)))
        headers = (("Authorization", "Bearer very-secret"),)
        error = await refused(get(client, f"http://127.0.0.1:{port}/", headers=headers))
    assert error.code == "upstream_unreachable"
    assert f"127.0.0.1:{port}" in error.message
    assert "very-secret" not in error.message
    assert "very-secret" not in repr(error.trace)
