"""A local HTTP upstream for the benchmark, in its own process so it does not share the loop.

`python -m bench.upstream` listens on 127.0.0.1 (a free port), prints the port on stdout and
answers every GET with a small fixed JSON body until its stdin closes. `Upstream` starts it
from the benchmark and stops it on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from types import TracebackType
from typing import Final

from aiohttp import web

BODY: Final = b'{"ok":true,"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}]}'
_ROOT: Final = Path(__file__).resolve().parent.parent
_START_TIMEOUT_S: Final = 15.0
_STOP_TIMEOUT_S: Final = 5.0


async def _answer(_request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def serve() -> None:
    """Serve on 127.0.0.1 until stdin closes."""
    app = web.Application()
    app.router.add_get("/", _answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        print(port, flush=True)
        await _stdin_closed()
    finally:
        await runner.cleanup()


class Upstream:
    """`async with Upstream() as upstream:` runs the server process; `upstream.url` is its URL."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def __aenter__(self) -> Upstream:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.upstream",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=_ROOT,
        )
        try:
            assert self._process.stdout is not None
            line = await asyncio.wait_for(self._process.stdout.readline(), _START_TIMEOUT_S)
            self.url = f"http://127.0.0.1:{int(line)}/"
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
