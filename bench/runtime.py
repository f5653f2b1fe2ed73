"""The runtime benchmark: `python -m bench.runtime [--json] [--only SECTION,...]`.

Measures, on real QuickJS worker processes:
1. the overhead of a trivial run on a warm pool (1 and 2 workers) and the Context preparation;
2. runs/s of a script making one HTTP call to a local upstream (concurrency 1 and 8);
3. `datagrid.addCell` cells/s through the pool into a discarding row sink, and in JS alone;
4. `magicParseJSON` rows/s (one call, and pages of 1,000);
5. the same ingest script under Node.js `vm`, as a reference;
6. the prelude as bytecode against its source: Context preparation and trivial runs/s.
Each section stops within about 20 s and says so; everything binds to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from importlib import metadata
from typing import Any, Final

from bench import ingest, node_ref, overhead, prelude, throughput
from bench.common import SECTION_BUDGET_S, Budget, Row

Section = Callable[[Budget, Sequence[Row]], Awaitable[list[Row]]]

SECTIONS: Final[dict[str, Section]] = {
    "overhead": overhead.run_section,
    "http": throughput.run_section,
    "ingest": ingest.run_ingest,
    "magic": ingest.run_magic,
    "node": node_ref.run_section,
    "prelude": prelude.run_section,
}
_GRACE_S: Final = 10.0
"""Beyond its budget, a section is cancelled (its loops should have stopped long before)."""
_HEADERS: Final = ("section", "metric", "value", "unit", "target", "status", "note")


async def _guarded(name: str, section: Section, previous: Sequence[Row]) -> list[Row]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(SECTION_BUDGET_S + _GRACE_S):
            rows = await section(Budget(SECTION_BUDGET_S), previous)
    except Exception as exc:  # one broken section must not hide the others
        rows = [Row(f"{name}.error", name, "section failed", None, "", status="ERROR",
                    note=f"{type(exc).__name__}: {exc}"[:160])]  # fmt: skip
    seconds = time.perf_counter() - started
    label = rows[0].section if rows else name
    return [*rows, Row(f"{name}.section_s", label, "(section wall time)", seconds, "s")]


async def collect(names: Sequence[str]) -> list[Row]:
    """Run the named sections in order; later ones may use earlier rows (ratios)."""
    rows: list[Row] = []
    for name in names:
        rows += await _guarded(name, SECTIONS[name], rows)
    return rows


def _format(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "n/a"
    if float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def table(rows: Sequence[Row]) -> str:
    """The rows as a plain aligned text table (the value column right-aligned)."""
    cells = [
        (row.section, row.metric, _format(row.value), row.unit, row.target, row.status, row.note)
        for row in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(_HEADERS)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if i == 2 else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(_HEADERS), rule, *(line(c) for c in cells)])


def _node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "not found"
    try:
        done = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return done.stdout.strip() or "unknown"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "quickjs": metadata.version("quickjs-ng"),
        "node": _node_version(),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def _json_value(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def as_json(rows: Sequence[Row], info: dict[str, Any], seconds: float) -> str:
    """Machine-readable output: results keyed by their stable names."""
    results = {row.key: {**asdict(row), "value": _json_value(row.value)} for row in rows}
    for entry in results.values():
        del entry["key"]
    return json.dumps({"machine": info, "total_s": seconds, "results": results}, indent=2)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.runtime",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    names = ",".join(SECTIONS)
    parser.add_argument("--only", default=names, help=f"comma-separated sections ({names})")
    arguments = parser.parse_args(argv)
    unknown = set(arguments.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return arguments


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the results."""
    arguments = _arguments(argv)
    info = machine()
    started = time.perf_counter()
    rows = asyncio.run(collect(arguments.only.split(",")))
    seconds = time.perf_counter() - started
    if arguments.json:
        print(as_json(rows, info, seconds))
        return
    print("runtime benchmark: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(table(rows))
    print(f"total {seconds:.1f} s")


if __name__ == "__main__":
    main()
