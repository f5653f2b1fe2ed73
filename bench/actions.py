"""The action benchmark: `python -m bench.actions [--json] [--rounds N] [--seconds S]`.

Side by side in one run on the same machine (SPEC 10):
- a fast local upstream (`bench.upstream` raw: a bare asyncio protocol answering a fixed small
  JSON body), measured alone first: it must be much faster than both sides;
- a bare aiohttp handler making the same upstream call with one shared `ClientSession`
  (`bench.bare`);
- the gateway (`gateway serve`, `bench.gatewayproc`) running an action whose script makes that
  call and answers the first cell.
Each is loaded at 1 and 32 concurrent callers by a load generator in its own process
(`bench.loadgen`), bare and gateway in alternating rounds so load on a shared machine hits them
alike. Prints requests/s of both, the ratio, p50/p99 of both and the latency the gateway adds,
the CPU each side's processes spent per request (what it could serve with the machine to
itself) and how many cores the rest of the machine used meanwhile (what the numbers shared).
Everything listens on 127.0.0.1 only; the run takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from yarl import URL

from bench.common import Row, at_least, at_most, summarize
from bench.cpu import children, cpu_by_pid, machine_busy_seconds, reaped_children_seconds, spent
from bench.gatewayproc import Gateway, Target
from bench.runtime import as_json, machine, table
from bench.upstream import ChildServer, Upstream

SECTION: Final = "actions"
LOADS: Final = (1, 32)
MAX_PER_ROUND: Final = 50_000
TARGET_RATIO: Final = 0.5
TARGET_ADDED_P50_MS: Final = 2.0
TARGET_ADDED_P99_MS: Final = 10.0
_LOADGEN_GRACE_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Side:
    """A server under test: the request that loads it and its processes (for their CPU)."""

    target: Target
    pids: Callable[[], list[int]]
    main_pid: int | None = None
    """The gateway's own process, whose CPU is also reported apart from its workers'."""


@dataclass(slots=True)
class Load:
    """What one side did at one load, summed over its rounds."""

    done: int = 0
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0
    cpu_s: float = 0.0
    main_cpu_s: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, tally: dict[str, Any]) -> None:
        """Add one load generator run."""
        self.done += int(tally["done"])
        self.errors += int(tally["errors"])
        self.first_error = self.first_error or str(tally["first_error"])
        self.seconds += float(tally["seconds"])
        self.latencies += [float(x) for x in tally["latencies"]]

    async def round(self, side: Side, concurrency: int, seconds: float) -> None:
        """Load `side` once and add what it did and the CPU its processes spent."""
        before = cpu_by_pid(side.pids())
        self.add(await generate(side.target, concurrency, seconds))
        after = cpu_by_pid(side.pids())
        self.cpu_s += spent(before, after)
        if side.main_pid is not None:
            pid = side.main_pid
            self.main_cpu_s += spent({pid: before.get(pid, 0.0)}, {pid: after.get(pid, 0.0)})

    @property
    def cpu_ms(self) -> float:
        """Server-side CPU milliseconds per request."""
        return self.cpu_s / self.done * 1000 if self.done else math.nan

    @property
    def main_cpu_ms(self) -> float:
        """CPU milliseconds per request of the main process alone (without its workers)."""
        return self.main_cpu_s / self.done * 1000 if self.done else math.nan

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.done / self.seconds if self.done and self.seconds > 0 else math.nan


async def generate(target: Target, concurrency: int, seconds: float) -> dict[str, Any]:
    """Run the load generator process once against `target`; return its tally.

    Raises:
        RuntimeError: the load generator failed.
    """
    argv = [str(target.url), "--method", "POST", "--body", target.body,
            "--concurrency", str(concurrency), "--seconds", str(seconds),
            "--max", str(MAX_PER_ROUND), "--latencies"]  # fmt: skip
    for header in target.headers:
        argv += ["--header", header]
    if target.name == "upstream":
        argv[1:3] = ["--method", "GET"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), seconds + _LOADGEN_GRACE_S)
    if process.returncode != 0:
        raise RuntimeError(f"the load generator failed: {err.decode()[-500:]}")
    tally: dict[str, Any] = json.loads(out)
    return tally


def _side_rows(key: str, label: str, load: Load, concurrency: int) -> list[Row]:
    stats = summarize(load.latencies)
    note = f"n={load.done} in {load.seconds:.1f} s"
    if load.errors:
        note += f"; {load.errors} failed, first: {load.first_error[:120]}"
    return [
        Row(f"{key}.c{concurrency}.rps", SECTION, f"{label}, {concurrency} callers: requests/s",
            load.rate, "req/s", note=note),
        Row(f"{key}.c{concurrency}.p50", SECTION, f"{label}, {concurrency} callers: p50",
            stats.p50, "ms"),
        Row(f"{key}.c{concurrency}.p99", SECTION, f"{label}, {concurrency} callers: p99",
            stats.p99, "ms"),
        Row(f"{key}.c{concurrency}.cpu", SECTION,
            f"{label}, {concurrency} callers: server CPU per request", load.cpu_ms, "ms",
            note="the gateway process and its workers" if key == "gateway" else ""),
        *([Row(f"{key}.c{concurrency}.cpu_main", SECTION,
               f"{label}, {concurrency} callers: gateway process CPU per request",
               load.main_cpu_ms, "ms", note="without its workers")]
          if key == "gateway" else []),
    ]  # fmt: skip


def _compare_rows(bare: Load, gateway: Load, concurrency: int) -> list[Row]:
    ratio = gateway.rate / bare.rate
    rows = [Row(f"ratio.c{concurrency}", SECTION, f"gateway / bare, {concurrency} callers",
                ratio, "x", f">= {TARGET_RATIO:g}" if concurrency == 32 else "",
                at_least(ratio, TARGET_RATIO) if concurrency == 32 else "")]  # fmt: skip
    if concurrency != 1:
        return rows
    base, extra = summarize(bare.latencies), summarize(gateway.latencies)
    added_p50, added_p99 = extra.p50 - base.p50, extra.p99 - base.p99
    return [
        *rows,
        Row("added.c1.p50", SECTION, "added latency (gateway - bare), 1 caller: p50", added_p50,
            "ms", f"<= {TARGET_ADDED_P50_MS:g} ms", at_most(added_p50, TARGET_ADDED_P50_MS)),
        Row("added.c1.p99", SECTION, "added latency (gateway - bare), 1 caller: p99", added_p99,
            "ms", f"<= {TARGET_ADDED_P99_MS:g} ms", at_most(added_p99, TARGET_ADDED_P99_MS)),
    ]  # fmt: skip


async def _upstream_rows(upstream: Side, seconds: float) -> list[Row]:
    rows: list[Row] = []
    for concurrency in LOADS:
        load = Load()
        await load.round(upstream, concurrency, seconds)
        rows += _side_rows("upstream", "upstream alone", load, concurrency)
    return rows


class _Others:
    """How many cores processes other than the benchmark's kept busy while it measured."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self._started = time.perf_counter()
        self._machine = machine_busy_seconds()
        self._ours = cpu_by_pid(pids())
        self._reaped = reaped_children_seconds()

    def row(self) -> Row:
        """The cores the rest of the machine used, as a row."""
        ours = spent(self._ours, cpu_by_pid(self._pids()))
        ours += reaped_children_seconds() - self._reaped  # the load generators
        busy = machine_busy_seconds() - self._machine
        cores = max(0.0, busy - ours) / (time.perf_counter() - self._started)
        return Row("machine.other_cores", SECTION, "other processes meanwhile", cores, "cores",
                   note="CPU the rest of the machine used: the numbers above share it")  # fmt: skip


async def measure(rounds: int, seconds: float) -> list[Row]:
    """Start the three servers, then measure each load in alternating rounds."""
    async with Upstream(raw=True) as upstream:
        up = Side(Target("upstream", URL(upstream.url), (), ""), lambda: [upstream.pid])
        rows = await _upstream_rows(up, seconds)
        async with ChildServer("bench.bare", upstream.url) as bare, Gateway(upstream.url) as gw:
            assert gw.target is not None
            sides = {
                "bare": Side(Target("bare", URL(bare.url), (), "{}"), lambda: [bare.pid]),
                "gateway": Side(gw.target, lambda: [gw.pid, *children(gw.pid)], gw.pid),
            }
            for side in sides.values():  # warm-up: connections, caches, a first of each
                await generate(side.target, 32, min(seconds, 1.0))
            others = _Others(lambda: [upstream.pid, bare.pid, gw.pid, *children(gw.pid)])
            for concurrency in LOADS:
                loads = {name: Load() for name in sides}
                for _ in range(rounds):
                    for name, side in sides.items():
                        await loads[name].round(side, concurrency, seconds)
                rows += _side_rows("bare", "bare aiohttp", loads["bare"], concurrency)
                rows += _side_rows("gateway", f"gateway ({gw.target.name})", loads["gateway"],
                                   concurrency)  # fmt: skip
                rows += _compare_rows(loads["bare"], loads["gateway"], concurrency)
            rows.append(others.row())
    return rows


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.actions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per load")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per round")
    arguments = parser.parse_args(argv)
    if not 1 <= arguments.rounds <= 10 or not 0.2 <= arguments.seconds <= 10:
        parser.error("--rounds is 1 to 10 and --seconds 0.2 to 10 (the run stays bounded)")
    return arguments


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the results."""
    arguments = _arguments(argv)
    info = machine()
    started = time.perf_counter()
    rows = asyncio.run(measure(arguments.rounds, arguments.seconds))
    seconds = time.perf_counter() - started
    if arguments.json:
        print(as_json(rows, info, seconds))
        return
    print("action benchmark: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(table(rows))
    print(f"total {seconds:.1f} s")


if __name__ == "__main__":
    main()
