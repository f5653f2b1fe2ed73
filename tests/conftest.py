"""Fixtures shared by every test: a real worker pool and a real egress client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.egress import AddressPolicy, EgressClient
from runtime.host import Host
from runtime.model import Limits, Metadata, RunMode, RunRequest, RunResult
from runtime.pool import PoolConfig, WorkerPool


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    """A started two-worker pool of real QuickJS worker processes."""
    workers = WorkerPool(PoolConfig(size=2))
    await workers.start()
    yield workers
    await workers.close()


@pytest.fixture
async def egress() -> AsyncIterator[EgressClient]:
    """An egress client that may reach this machine (tests' fake upstreams live on loopback)."""
    client = EgressClient(AddressPolicy(allow_private=True))
    yield client
    await client.close()


def make_request(
    script: str,
    *,
    mode: RunMode = RunMode.PROCESS,
    account: dict[str, object] | None = None,
    parameters: dict[str, object] | None = None,
    report: str | None = None,
    secrets: tuple[str, ...] = (),
    **limits: object,
) -> RunRequest:
    """A run request with test-friendly defaults (a short deadline)."""
    limit_values: dict[str, object] = {"wall_time_s": 5.0, **limits}
    return RunRequest(
        script=script,
        mode=mode,
        metadata=Metadata(account=account or {}, parameters=parameters or {}, report=report),
        limits=Limits.model_validate(limit_values),
        secrets=secrets,
    )


async def run_script(
    pool: WorkerPool, script: str, *, host: Host | None = None, **options: object
) -> RunResult:
    """Run `script` on `pool` and return its result."""
    return await pool.run(make_request(script, **options), host or Host())  # type: ignore[arg-type]


pytest_plugins = ["tests.domo_fakes", "tests.dbfixtures"]
