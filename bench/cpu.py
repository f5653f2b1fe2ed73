"""CPU time of processes from /proc (Linux): what a side costs per request, whatever the load.

On a shared machine requests/s and latencies move with everything else that runs; the CPU a
side spends per request does not, and it tells what throughput the side could reach with the
machine to itself. `/proc/stat` says how busy the machine was meanwhile.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

_PROC: Final = Path("/proc")
_TICKS: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields follow the last ')'.
    return text.rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (the gateway's workers)."""
    found = []
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[1] == str(pid):
                found.append(int(entry.name))
    return found


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """User and system CPU seconds each live process of `pids` has used so far."""
    seconds = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return seconds


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two snapshots (a process started meanwhile counts whole; one
    that ended meanwhile, a replaced worker, is missed). NaN without /proc."""
    if not after:
        return math.nan
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def machine_busy_seconds() -> float:
    """CPU seconds all processors spent on anything but idling since boot (NaN without /proc)."""
    try:
        first = (_PROC / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, *_ = (int(v) for v in first[1:])
    return (user + nice + system + irq + softirq) / _TICKS


def reaped_children_seconds() -> float:
    """CPU seconds of this process's children that exited and were waited for (load runs)."""
    times = os.times()
    return times.children_user + times.children_system
