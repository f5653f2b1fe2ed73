"""THREATS R13: the workers of the service's own pool run confined (seccomp, rlimits).

tests/runtime/test_sandbox.py probes the confinement functions in a process of their own;
this test reads the confinement off a live worker that `gateway serve` would run scripts on,
so it fails when worker start-up stops calling them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.keys import POOL
from gateway.settings import Settings

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

ADDRESS_SPACE_MB = 900


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _limits(pid: int) -> dict[str, tuple[str, str]]:
    """`/proc/<pid>/limits` as name -> (soft, hard)."""
    rows = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    # Columns: a name of several words, then soft, hard and (maybe) units, aligned at 26.
    return {row[:26].strip(): tuple(row[26:].split()[:2]) for row in rows}  # type: ignore[misc]


async def test_r13_live_workers_of_the_service_pool_are_confined(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", workers=2, worker_address_space_mb=ADDRESS_SPACE_MB
    )
    client = await aiohttp_client(create_app(settings))
    assert client.app is not None
    pids = client.app[POOL].worker_pids()
    assert len(pids) == 2
    for pid in pids:
        assert _status(pid)["Seccomp"] == "2"  # SECCOMP_MODE_FILTER
        limits = _limits(pid)
        address_space = str(ADDRESS_SPACE_MB * 1024 * 1024)
        assert limits["Max address space"] == (address_space, address_space)
        assert limits["Max core file size"] == ("0", "0")
        assert limits["Max file size"] == ("0", "0")
