"""The SQL sandbox under the operator's settings, for the service and for `script run`."""

from __future__ import annotations

from gateway.settings import Settings
from writeback.datasets.sandbox import SandboxLimits, SqlSandbox


def sandbox_for(settings: Settings) -> SqlSandbox:
    """A sandbox with `GATEWAY_SQL_TIMEOUT_S`, `_MEMORY_MB`, `_THREADS` and `_CONCURRENCY`."""
    return SqlSandbox(
        SandboxLimits(
            timeout_s=settings.sql_timeout_s,
            memory_mb=settings.sql_memory_mb,
            threads=settings.sql_threads,
            concurrency=settings.sql_concurrency,
        )
    )
