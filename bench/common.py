"""Shared pieces of the runtime benchmark: time budgets, statistics, result rows, a row sink."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from runtime.host import Host
from runtime.model import Column, JsonValue, Limits, RunRequest, RunResult
from runtime.pool import PoolConfig, WorkerPool

SECTION_BUDGET_S = 20.0
"""The most wall time one section may take (its loops stop early and say so)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One printed number: `key` names it in `--json`, the rest is for the table."""

    key: str
    section: str
    metric: str
    value: float | None
    unit: str
    target: str = ""
    status: str = ""
    note: str = ""


class Budget:
    """A deadline on `time.perf_counter()`; remembers whether a loop ran into it."""

    def __init__(self, seconds: float, parent: Budget | None = None) -> None:
        deadline = time.perf_counter() + seconds
        self._deadline = min(deadline, parent.deadline) if parent else deadline
        self._parent = parent
        self.hit = False

    @property
    def deadline(self) -> float:
        """The absolute deadline (perf_counter seconds)."""
        return self._deadline

    def left(self) -> bool:
        """True while time is left; once false, records that the deadline was hit."""
        if time.perf_counter() < self._deadline:
            return True
        self.hit = True
        if self._parent is not None:
            self._parent.hit = True
        return False

    def remaining(self) -> float:
        """Seconds until the deadline (never negative)."""
        return max(0.0, self._deadline - time.perf_counter())

    def sub(self, seconds: float) -> Budget:
        """A budget of at most `seconds` that also ends with this one."""
        return Budget(seconds, self)


@dataclass(frozen=True, slots=True)
class Summary:
    """Latency statistics in milliseconds."""

    count: int
    p50: float
    p99: float
    mean: float


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(seconds: Sequence[float]) -> Summary:
    """p50/p99/mean in ms of durations given in seconds."""
    if not seconds:
        return Summary(0, math.nan, math.nan, math.nan)
    ordered = sorted(seconds)
    return Summary(
        count=len(ordered),
        p50=percentile(ordered, 0.50) * 1000,
        p99=percentile(ordered, 0.99) * 1000,
        mean=sum(ordered) / len(ordered) * 1000,
    )


def median(values: Sequence[float]) -> float:
    """The median (NaN if empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def at_most(value: float, target: float) -> str:
    """PASS/MISS of a value that must not exceed `target` ("n/a" without a value)."""
    if math.isnan(value):
        return "n/a"
    return "PASS" if value <= target else "MISS"


def at_least(value: float, target: float) -> str:
    """PASS/MISS of a value that must reach `target` ("n/a" without a value)."""
    if math.isnan(value):
        return "n/a"
    return "PASS" if value >= target else "MISS"


def cut_note(budget: Budget, done: int, wanted: int) -> str:
    """A note saying a loop stopped at its time budget before doing all it wanted."""
    if budget.hit and done < wanted:
        return f"time budget hit: {done}/{wanted}"
    return ""


@dataclass(slots=True)
class DiscardSink:
    """A `runtime.host.RowSink` that only counts what it is given."""

    rows: int = 0
    cells: int = 0
    finished: bool = False
    columns: list[Column] = field(default_factory=list)

    async def write(self, columns: Sequence[str], rows: list[list[JsonValue]]) -> None:
        """Count the chunk and drop it."""
        self.rows += len(rows)
        self.cells += sum(len(row) for row in rows)

    async def finish(self, columns: Sequence[Column]) -> None:
        """Remember the final columns."""
        self.finished = True
        self.columns = list(columns)

    async def abort(self) -> None:
        """Nothing is kept anyway."""
        self.finished = False


def request(script: str, **limits: object) -> RunRequest:
    """A run request with the given limits (e.g. `result_rows=None`)."""
    return RunRequest(script=script, limits=Limits.model_validate(limits))


async def started_pool(size: int) -> WorkerPool:
    """A started pool of `size` real workers."""
    pool = WorkerPool(PoolConfig(size=size))
    await pool.start()
    return pool


async def run_once(pool: WorkerPool, run: RunRequest, host: Host) -> tuple[RunResult, float]:
    """Run and return the result and the wall time in seconds."""
    started = time.perf_counter()
    result = await pool.run(run, host)
    return result, time.perf_counter() - started


def failure_note(result: RunResult) -> str:
    """Why a run did not succeed, shortened for the table."""
    if result.error is None:
        return f"status {result.status.value}"
    return f"{result.status.value}: {result.error.code}: {result.error.message[:80]}"
