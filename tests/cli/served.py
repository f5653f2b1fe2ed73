"""A real `gateway serve` in a subprocess, on a port the system chose, and what it logged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

STARTUP_TIMEOUT_S = 60.0


@dataclass
class Served:
    """A running gateway: its address and its stderr, one entry per line."""

    process: asyncio.subprocess.Process
    url: str = ""
    lines: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """The log lines that are JSON objects (every line structlog writes off a terminal)."""
        found = []
        for line in self.lines:
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    found.append(value)
        return found

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig` and wait for the exit status."""
        self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), timeout=60)


async def _read_lines(served: Served, started: asyncio.Future[str]) -> None:
    stream = served.process.stderr
    assert stream is not None
    async for raw in stream:
        line = raw.decode(errors="replace").rstrip("\n")
        served.lines.append(line)
        if not started.done() and '"gateway_starting"' in line:
            started.set_result(json.loads(line)["url"])
    if not started.done():
        started.set_exception(AssertionError("gateway serve exited:\n" + "\n".join(served.lines)))


@contextlib.asynccontextmanager
async def serve(data_dir: Path, env: dict[str, str] | None = None) -> AsyncIterator[Served]:
    """Start `gateway serve --port 0`, wait until it answers `/readyz`; kill it if still up."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        env={"PATH": "/usr/bin:/bin", "GATEWAY_WORKERS": "1", **(env or {})},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    served = Served(process)
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    reader = asyncio.create_task(_read_lines(served, started))
    try:
        served.url = await asyncio.wait_for(started, STARTUP_TIMEOUT_S)
        await _wait_ready(served.url)
        yield served
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader


async def _wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(int(STARTUP_TIMEOUT_S * 10)):
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(url + "/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not become ready")
