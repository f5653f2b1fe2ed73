"""A load generator in its own process, so the client's cost is charged to neither side.

`python -m bench.loadgen URL --concurrency N --seconds S [--max N] [--method M] [--header
'Name: value'] [--body TEXT]` keeps N HTTP/1.1 keep-alive connections to a 127.0.0.1 URL busy,
one request at a time each, for S seconds (or N requests in all), and prints one JSON object:
requests done, non-200 answers (and the first one), the wall time and the latency statistics.
Each connection is a bare asyncio protocol writing one prebuilt request: far cheaper per
request than an aiohttp client, which would otherwise be the slowest part of the comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Final

from yarl import URL

from bench.common import summarize

_CONNECT_TIMEOUT_S: Final = 10.0
_ANSWER_TIMEOUT_S: Final = 60.0


class ResponseError(Exception):
    """The server's answer is not HTTP/1.1 with a `Content-Length` (all the servers here send)."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: `ask()` sends the request and waits for the whole answer."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._closed: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = exc or ConnectionResetError("the server closed the connection")
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(self._closed)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._answer is None or self._answer.done():
            return
        try:
            parsed = _parse(self._buffer)
        except ResponseError as exc:
            self._answer.set_exception(exc)
            return
        if parsed is not None:
            status, body, used = parsed
            del self._buffer[:used]
            self._answer.set_result((status, body))

    async def ask(self, request: bytes) -> tuple[int, bytes]:
        """Send `request` and return the answer's status and body."""
        if self._closed is not None:
            raise self._closed
        assert self._transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        async with asyncio.timeout(_ANSWER_TIMEOUT_S):
            return await self._answer

    def close(self) -> None:
        """Close the connection."""
        if self._transport is not None:
            self._transport.close()


def _parse(buffer: bytearray) -> tuple[int, bytes, int] | None:
    """Status, body and bytes used of the first whole answer in `buffer` (None: not yet)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ResponseError(f"not an HTTP/1.x status line: {head[0][:80]!r}")
    length = None
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length is None:
        raise ResponseError("an answer without Content-Length")
    if len(buffer) < end + 4 + length:
        return None
    return int(parts[1]), bytes(buffer[end + 4 : end + 4 + length]), end + 4 + length


def build_request(url: URL, method: str, headers: Sequence[str], body: str) -> bytes:
    """The bytes of one HTTP/1.1 request (sent again and again on each connection)."""
    encoded = body.encode()
    lines = [f"{method} {url.raw_path_qs} HTTP/1.1", f"Host: {url.host}:{url.port}", *headers]
    if encoded or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(encoded)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + encoded


@dataclass(slots=True)
class Tally:
    """What the connections did; printed as JSON."""

    done: int = 0
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    latencies: list[float] = field(default_factory=list)


async def _loop(url: URL, request: bytes, deadline: float, cap: int, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    assert url.host is not None  # `_arguments` checked both
    assert url.port is not None
    async with asyncio.timeout(_CONNECT_TIMEOUT_S):
        _, connection = await loop.create_connection(_Connection, url.host, url.port)
    try:
        while time.perf_counter() < deadline and tally.done + tally.errors < cap:
            started = time.perf_counter()
            status, body = await connection.ask(request)
            if status == 200:
                tally.latencies.append(time.perf_counter() - started)
                tally.done += 1
            else:
                tally.errors += 1
                tally.first_error = tally.first_error or f"{status}: {body[:200]!r}"
    finally:
        connection.close()


async def drive(url: URL, request: bytes, *, concurrency: int, seconds: float, cap: int) -> Tally:
    """Keep `concurrency` connections busy until `seconds` pass or `cap` requests are done."""
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_loop(url, request, deadline, cap, tally) for _ in range(concurrency)))
    tally.seconds = time.perf_counter() - started
    stats = summarize(tally.latencies)
    tally.p50_ms, tally.p99_ms, tally.mean_ms = stats.p50, stats.p99, stats.mean
    return tally


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("url", type=URL)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--max", type=int, default=100_000, help="most requests in all")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--body", default="")
    parser.add_argument("--latencies", action="store_true", help="print every latency (s)")
    arguments = parser.parse_args(argv)
    if arguments.url.host not in ("127.0.0.1", "localhost"):
        parser.error("the load generator only talks to 127.0.0.1")
    return arguments


def main(argv: Sequence[str] | None = None) -> None:
    """Drive the load and print the tally as JSON."""
    arguments = _arguments(argv)
    request = build_request(arguments.url, arguments.method, arguments.header, arguments.body)
    tally = asyncio.run(
        drive(
            arguments.url,
            request,
            concurrency=arguments.concurrency,
            seconds=arguments.seconds,
            cap=arguments.max,
        )
    )
    result = asdict(tally)
    if not arguments.latencies:
        del result["latencies"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
