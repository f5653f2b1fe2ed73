"""The worker process: runs one script at a time in a fresh QuickJS Context.

Started by the pool as `python -I -m runtime.worker ADDRESS_SPACE_BYTES [source]`. It compiles
the prelude to bytecode (`runtime.bytecode`), confines itself (rlimits, seccomp), then loops:
prepare a Context with the prelude, say `ready`, take a `run`, answer with a `result` (or take
any number of `check`s, each answered with `checked`). All I/O of a script is a host call to
the pool over the pipe.

Every frame is a dict this module built from values it parsed and checked (`runtime.frames`),
never text from the prelude spliced into a message: a script may have subverted what the
prelude serialises (docs/decisions/0009-worker-frames.md).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, Final

from runtime import frames, protocol
from runtime.bytecode import BytecodeError, Prelude, SourcePrelude, compile_prelude
from runtime.pureops import OPS
from runtime.sandbox import deny_network_and_processes, limit_resources
from runtime.syntax import SYNTAX_CHECKER

PRELUDE_FILES: Final = ("core.js", "datagrid.js", "datasets.js")
LAZY_SOURCES: Final = {
    "url": "lazy/url.js",
    "encoding": "lazy/encoding.js",
    "clone": "lazy/clone.js",
    "magic": "lazy/magic.js",
}
_RUN_ENDED: Final = json.dumps(
    {"t": "reply", "error": {"code": "run_ended", "message": "the run has already ended"}}
)
_CHECK_MEMORY_BYTES: Final = 256 * 1024 * 1024
_CHECK_STACK_BYTES: Final = 1024 * 1024


class Outbox:
    """Writes the worker's frames in order, rows chunks and log lines from a thread of its own.

    Parsing and checking a rows chunk costs about as much as the script took to make it; done
    on the writer thread, it overlaps the script (the binding releases the GIL while
    JavaScript runs). The queue is short, so a script cannot get far ahead of its checks.
    A frame the worker then waits on (a host call, the result, `ready`, `checked`) is written
    by the calling thread once the queue is empty (`say`, `result`): handing it to the writer
    thread would add a thread switch to every round trip, and a result handed over would wait
    for the GIL while the next Context is prepared. It also keeps the run's last word: after a
    run's `result`, nothing but `ready` or `checked` leaves until the next run.
    """

    def __init__(self, fd: int, on_violation: Callable[[], None]) -> None:
        self._fd = fd
        self._on_violation = on_violation
        self._items: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=2)
        self._ended = False  # a result of the current run is out (only this thread uses it)
        threading.Thread(target=self._write_all, name="frames", daemon=True).start()

    def frame(self, message: dict[str, Any]) -> None:
        """Send a frame the worker built, after what is queued, from the writer thread."""
        self._items.put(("frame", message))

    def rows(self, chunk_json: object) -> None:
        """Send a rows chunk of the prelude once it is checked."""
        self._items.put(("rows", chunk_json))

    def say(self, message: dict[str, Any]) -> None:
        """Send a frame the worker built now, on this thread, after everything queued."""
        self._now("frame", message)

    def result(self, result_json: object) -> None:
        """Send the prelude's result now, on this thread, once it is checked."""
        self._now("result", result_json)

    def drain(self) -> None:
        """Wait until everything put so far is written (or dropped)."""
        self._items.join()

    def _now(self, kind: str, item: object) -> None:
        # Once the queue is drained the writer thread waits for the next item: this thread
        # alone touches `_ended` and the pipe until it queues one.
        self.drain()
        self._write(kind, item)

    def _write_all(self) -> None:
        while True:
            kind, item = self._items.get()
            try:
                self._write(kind, item)
            finally:
                self._items.task_done()

    def _write(self, kind: str, item: object) -> None:
        try:
            message = self._message(kind, item)
            if message is not None:
                protocol.write_frame(self._fd, protocol.encode(message))
        except BaseException:
            os._exit(3)  # the pipe is gone: nothing more can be said

    def _message(self, kind: str, item: object) -> dict[str, Any] | None:
        if kind == "frame":
            assert isinstance(item, dict)
            if item["t"] in ("ready", "checked"):
                self._ended = False
                return item
        if self._ended:
            return None
        try:
            if kind == "rows":
                return frames.rows_frame(item)
            message = frames.result_frame(item) if kind == "result" else item
        except frames.FrameError as exc:
            self._on_violation()
            message = frames.error_result("script_exception", str(exc))
        assert isinstance(message, dict)
        self._ended = message["t"] == "result"
        return message


def _read_js(name: str) -> str:
    return (resources.files("runtime") / "js" / name).read_text(encoding="utf-8")


def build_prelude() -> str:
    """Join the prelude files into the one IIFE every Context evaluates."""
    body = "\n".join(_read_js(name) for name in PRELUDE_FILES)
    return "(function () {\n" + body + "\n})();\n"


def script_line_offset(prelude: str) -> int:
    """Blank lines put before a script: more than any prelude or lazy file has.

    QuickJS names all code `<input>`; a frame on a line past this offset is the script's.
    """
    sources = [prelude, *(_read_js(path) for path in LAZY_SOURCES.values())]
    return 1 + max(source.count("\n") + 1 for source in sources)


class Worker:
    """Worker-side state of the current run and the callables the prelude uses."""

    def __init__(self, infd: int, outfd: int, *, bytecode: bool = True) -> None:
        self._in = infd
        self._out = outfd
        source = build_prelude()
        self._line_offset = script_line_offset(source)
        self._prelude: Prelude = compile_prelude(source) if bytecode else SourcePrelude(source)
        self._fallback = SourcePrelude(source)
        self._lazy: dict[str, str] = {}
        self._call_id = 0
        self._outbox: Outbox | None = None
        self._poisoned = False
        self._log_left = 0
        self._log_closed = False
        self._wall_time_s = 30.0

    # --- callables (string in, string out, never raising) -------------------------------
    def _host(self, op: Any, args_json: Any) -> str:
        outbox = self._frames()
        outbox.drain()  # a chunk that is still being checked may end the run
        if self._poisoned:
            return _RUN_ENDED
        try:
            call = frames.call_frame(self._call_id + 1, op, args_json)
        except frames.FrameError as exc:
            self._violation(exc)
            return _RUN_ENDED
        self._call_id += 1
        outbox.say(call)
        while True:
            payload = protocol.read_frame(self._in)
            message = json.loads(payload)
            if message.get("t") == "reply" and message.get("id") == self._call_id:
                return payload.decode()
            raise protocol.ProtocolError(f"unexpected message {message.get('t')!r} during a call")

    def _log(self, line_json: Any) -> None:
        if self._poisoned or self._log_closed:
            return
        try:
            line = frames.log_line(line_json)
        except frames.FrameError as exc:
            self._violation(exc)
            return
        if len(line) > self._log_left:
            self._log_closed = True
            self._send_log({"t": "log", "line": frames.LOG_TRUNCATED})
            return
        self._log_left -= len(line)
        self._send_log({"t": "log", "line": line})

    def _emit(self, chunk_json: Any) -> None:
        if not self._poisoned:
            self._frames().rows(chunk_json)

    def _fatal(self, result_json: Any) -> None:
        if not self._poisoned:
            self._poisoned = True
            self._frames().result(result_json)

    def _violation(self, error: frames.FrameError) -> None:
        """The prelude handed over something malformed: the script subverted it. End the run."""
        self._poisoned = True
        self._frames().say(frames.error_result("script_exception", str(error)))

    def _poison(self) -> None:
        self._poisoned = True

    def _sleep(self, ms_text: Any) -> None:
        try:
            seconds = float(ms_text) / 1000
        except ValueError:
            return
        # The pool's deadline is what really bounds a run; never sleep past it here.
        time.sleep(min(max(seconds, 0.0), self._wall_time_s))

    def _util(self, op: Any, arg_json: Any) -> str:
        function = OPS.get(str(op))
        if function is None:
            return json.dumps({"error": f"unknown helper {op!r}"})
        try:
            return json.dumps({"ok": function(json.loads(str(arg_json)))})
        except (ValueError, TypeError, KeyError, IndexError, UnicodeError) as exc:
            return json.dumps({"error": str(exc)})
        except RecursionError:
            return json.dumps({"error": "the input is nested too deeply"})

    def _source(self, name: Any) -> str:
        path = LAZY_SOURCES.get(str(name))
        if path is None:
            return ""
        if path not in self._lazy:
            self._lazy[path] = _read_js(path)
        return self._lazy[path]

    # --- the loop ---------------------------------------------------------------------
    def _frames(self) -> Outbox:
        if self._outbox is None:
            self._outbox = Outbox(self._out, self._poison)
        return self._outbox

    def _send_log(self, message: dict[str, Any]) -> None:
        self._frames().frame(message)

    def _prepare(self) -> tuple[Any, Any, Any]:
        import quickjs

        context = quickjs.Context()
        callables: dict[str, Callable[..., Any]] = {
            "__gw_host": self._host,
            "__gw_log": self._log,
            "__gw_emit": self._emit,
            "__gw_fatal": self._fatal,
            "__gw_sleep": self._sleep,
            "__gw_util": self._util,
            "__gw_source": self._source,
        }
        for name, function in callables.items():
            context.add_callable(name, _never_raising(function))
        try:
            self._prelude.load(context)
        except BytecodeError:
            # Never seen, but a Context the bytecode half-set-up is not to be trusted.
            self._prelude = self._fallback
            return self._prepare()
        run, finish = context.get("__gw_run"), context.get("__gw_finish")
        context.eval("delete globalThis.__gw_run; delete globalThis.__gw_finish;")
        return context, run, finish

    def serve(self) -> None:
        """Run scripts (and check others) until the pool closes the pipe."""
        while True:
            context, run, finish = self._prepare()
            self._frames().say({"t": "ready", "rss": _rss_bytes()})
            while True:
                try:
                    message = json.loads(protocol.read_frame(self._in))
                except protocol.ProtocolError:
                    return
                if message.get("t") == "check":
                    self._frames().say(self._check(str(message["script"])))
                    continue
                if message.get("t") != "run":
                    raise protocol.ProtocolError(f"expected a run, got {message.get('t')!r}")
                self._execute(context, run, finish, message)
                break

    def _check(self, script: str) -> dict[str, Any]:
        """Parse `script` as a run would, in a Context of its own, without running any of it."""
        import quickjs

        context = quickjs.Context()
        context.set_memory_limit(_CHECK_MEMORY_BYTES)
        context.set_max_stack_size(_CHECK_STACK_BYTES)
        try:
            context.eval(SYNTAX_CHECKER)
            answer = context.get("__gw_check")(script, self._line_offset)
        except quickjs.JSException as exc:
            message = str(exc).split("\n", 1)[0]
            return {"t": "checked", "ok": False, "message": message, "line": None, "column": None}
        return frames.checked_frame(answer)

    def _execute(self, context: Any, run: Any, finish: Any, message: dict[str, Any]) -> None:
        import quickjs

        limits = message["limits"]
        self._poisoned = False
        self._log_left = int(limits["log_bytes"])
        self._log_closed = False
        self._wall_time_s = float(limits["wall_time_s"])
        context.set_memory_limit(int(limits["memory_mb"]) * 1024 * 1024)
        context.set_max_stack_size(int(limits["stack_kb"]) * 1024)
        run_json = json.dumps(
            {
                "lineOffset": self._line_offset,
                "mode": message["mode"],
                "metadata": message["metadata"],
                "chunkRows": message.get("chunk_rows", 10_000),
                "resultRows": limits["result_rows"],
            }
        )
        result: object
        try:
            run(message["script"], run_json)
            while context.execute_pending_job():
                pass
            result = finish()
        except quickjs.StackOverflow:
            if not self._poisoned:
                self._frames().say(frames.error_result("stack_overflow", "stack overflow"))
            return
        except quickjs.JSException as exc:
            if not self._poisoned:
                out_of_memory = "out of memory" in str(exc)
                self._frames().say(
                    frames.error_result("memory_limit", "the script ran out of memory")
                    if out_of_memory
                    else frames.error_result("script_exception", str(exc).split("\n", 1)[0])
                )
            return
        if self._poisoned:
            return
        if not isinstance(result, str):
            self._frames().say(
                frames.error_result("worker_crashed", "the prelude returned no result")
            )
            return
        self._frames().result(result)


def _never_raising(function: Callable[..., Any]) -> Callable[..., Any]:
    """The binding mishandles a Python exception inside a callable: end the worker instead."""

    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except BaseException:
            os._exit(3)

    return call


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _take_stdio() -> tuple[int, int]:
    """Move the protocol to private descriptors; stray output goes to stderr."""
    infd = os.dup(0)
    outfd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    return infd, outfd


def main() -> None:
    """Entry point of a worker process: `ADDRESS_SPACE_BYTES [source]`.

    `source` evaluates the prelude's source in every Context instead of its bytecode.
    """
    address_space = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    bytecode = sys.argv[2:3] != ["source"]
    infd, outfd = _take_stdio()
    os.environ["TZ"] = "UTC"  # noqa: TID251 - the worker's own process, scripts see UTC
    time.tzset()
    worker = Worker(infd, outfd, bytecode=bytecode)
    import quickjs  # noqa: F401 - loaded before the sandbox closes file access

    if address_space:
        limit_resources(address_space)
    deny_network_and_processes()
    try:
        worker.serve()
    except protocol.ProtocolError:
        sys.exit(2)


if __name__ == "__main__":
    main()
