"""A bare QuickJS Context with the worker's prelude and stub host callables (no pool, no pipe).

It measures what the JavaScript side costs by itself: the prelude's evaluation (the worker's
per-run Context preparation) and a script's run with rows emitted to a stub that drops them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import quickjs

from runtime.bytecode import Prelude
from runtime.worker import build_prelude, script_line_offset

CALLABLES: Final = (
    "__gw_host",
    "__gw_log",
    "__gw_emit",
    "__gw_fatal",
    "__gw_sleep",
    "__gw_util",
    "__gw_source",
)
_REFUSED: Final = json.dumps({"error": {"code": "unavailable", "message": "bench stub"}})


@dataclass(slots=True)
class Stubs:
    """The host side of a bare Context: counts emitted chunks, keeps a fatal result."""

    chunks: int = 0
    chars: int = 0
    fatal: str | None = None

    def emit(self, chunk_json: Any) -> None:
        """Take a rows chunk (the JSON text the worker would frame) and drop it."""
        self.chunks += 1
        self.chars += len(str(chunk_json))

    def set_fatal(self, result_json: Any) -> None:
        """Remember the first result a script ended the run with."""
        if self.fatal is None:
            self.fatal = str(result_json)

    def callables(self) -> dict[str, Callable[..., Any]]:
        """The seven callables the prelude captures, by global name."""
        return {
            "__gw_host": lambda *_: _REFUSED,
            "__gw_log": lambda *_: None,
            "__gw_emit": self.emit,
            "__gw_fatal": self.set_fatal,
            "__gw_sleep": lambda *_: None,
            "__gw_util": lambda *_: _REFUSED,
            "__gw_source": lambda *_: "",
        }


def new_context(stubs: Stubs) -> Any:
    """A fresh Context with the host callables installed (the prelude not evaluated yet)."""
    context = quickjs.Context()
    for name, function in stubs.callables().items():
        context.add_callable(name, function)
    return context


@dataclass(frozen=True, slots=True)
class PrepareTimes:
    """One Context preparation, in seconds, split as the worker does it."""

    create: float
    prelude: float
    free: float


def time_prepare(prelude: Prelude) -> PrepareTimes:
    """Create a Context, load the prelude into it (source or bytecode), free it; time each step."""
    started = time.perf_counter()
    held: list[Any] = [new_context(Stubs())]
    created = time.perf_counter()
    prelude.load(held[0])
    held.extend((held[0].get("__gw_run"), held[0].get("__gw_finish")))
    evaluated = time.perf_counter()
    held.clear()
    freed = time.perf_counter()
    return PrepareTimes(created - started, evaluated - created, freed - evaluated)


@dataclass(frozen=True, slots=True)
class BareRun:
    """A script's run in a bare Context: the wall time of run + finish, and what it produced."""

    seconds: float
    result: dict[str, Any]
    chunks: int


def run_bare(script: str, *, prelude: str | None = None, memory_mb: int = 512) -> BareRun:
    """Run `script` as the worker would (`__gw_run` then `__gw_finish`), rows to a stub."""
    stubs = Stubs()
    context = new_context(stubs)
    source = prelude if prelude is not None else build_prelude()
    context.eval(source)
    context.set_memory_limit(memory_mb * 1024 * 1024)
    run, finish = context.get("__gw_run"), context.get("__gw_finish")
    run_json = json.dumps(
        {
            "lineOffset": script_line_offset(source),
            "mode": "process",
            "metadata": {},
            "chunkRows": 10_000,
            "resultRows": None,
        }
    )
    started = time.perf_counter()
    run(script, run_json)
    while context.execute_pending_job():
        pass
    final = finish()
    seconds = time.perf_counter() - started
    text = final if isinstance(final, str) else stubs.fatal
    result: dict[str, Any] = json.loads(text) if text else {"status": "error", "error": None}
    return BareRun(seconds, result, stubs.chunks)
