"""A local HTTP upstream for the benchmark, in its own process so it does not share the loop.

`python -m bench.upstream [raw]` listens on 127.0.0.1 (a free port), prints the port on stdout
and answers every request with a small fixed JSON body until its stdin closes: through aiohttp,
or with `raw` through a bare asyncio protocol that writes one prebuilt response per request
(several times faster than any aiohttp server, so a comparison of two aiohttp services does not
measure it). `Upstream` starts it from the benchmark and stops it on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from aiohttp import web

BODY: Final = b'{"ok":true,"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}]}'
_ROOT: Final = Path(__file__).resolve().parent.parent
_START_TIMEOUT_S: Final = 15.0
_STOP_TIMEOUT_S: Final = 5.0


async def _answer(_request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


_RAW_RESPONSE: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    % (len(BODY), BODY)
)


class _RawHttp(asyncio.Protocol):
    """HTTP/1.1 keep-alive without parsing: one fixed answer per request head (no bodies)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._pending += data
        heads = self._pending.count(b"\r\n\r\n")
        if heads:
            self._pending = self._pending[self._pending.rindex(b"\r\n\r\n") + 4 :]
            self._transport.write(_RAW_RESPONSE * heads)


async def stdin_closed() -> None:
    """Return once this process's stdin is closed (how a `ChildServer` is told to stop)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def serve_raw() -> None:
    """Serve the fixed answer through `_RawHttp` on 127.0.0.1 until stdin closes."""
    server = await asyncio.get_running_loop().create_server(_RawHttp, "127.0.0.1", 0)
    try:
        print(server.sockets[0].getsockname()[1], flush=True)
        await stdin_closed()
    finally:
        server.close()


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
        await stdin_closed()
    finally:
        await runner.cleanup()


class ChildServer:
    """`async with ChildServer(module, *args) as server:` runs `python -m module args`, which
    prints its port and serves until its stdin closes; `server.url` is its URL."""

    def __init__(self, module: str, *args: str) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._argv = (module, *args)
        self.url = ""

    @property
    def pid(self) -> int:
        """The server's process id (0 before it started)."""
        return self._process.pid if self._process is not None else 0

    async def __aenter__(self) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *self._argv,
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


class Upstream(ChildServer):
    """`async with Upstream() as upstream:` runs this module's server (`raw`: the fast one)."""

    def __init__(self, *, raw: bool = False) -> None:
        super().__init__("bench.upstream", *(["raw"] if raw else []))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_raw() if sys.argv[1:] == ["raw"] else serve())
