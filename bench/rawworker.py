"""One worker process driven over its pipe synchronously, without the pool or asyncio.

It splits a trivial run's cost between the worker and the pool: `run -> result` is the worker's
share of a run (plus one pipe round trip), `result -> ready` is the Context preparation for the
next run. The pool's share is what a pool run costs beyond `run -> result`.
"""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Final

from runtime import protocol
from runtime.model import RunRequest
from runtime.pool import PoolConfig

_ENV: Final = {"TZ": "UTC", "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
_READ_TIMEOUT_S: Final = 10.0
"""A frame's first byte must come within this; small frames then arrive whole at once."""


def run_frame(request: RunRequest) -> bytes:
    """The `run` message the pool sends for `request`."""
    return protocol.encode(
        {
            "t": "run",
            "script": request.script,
            "mode": request.mode.value,
            "metadata": request.metadata.model_dump(mode="json", by_alias=True),
            "limits": request.limits.model_dump(mode="json"),
            "chunk_rows": 10_000,
        }
    )


@dataclass(slots=True)
class Split:
    """Seconds per run: until the result, and from the result until the next `ready`."""

    to_result: list[float] = field(default_factory=list)
    to_ready: list[float] = field(default_factory=list)


class RawWorker:
    """`with RawWorker() as worker:` starts a worker as the pool does and kills it at the end."""

    def __init__(self) -> None:
        config = PoolConfig()
        self._process = subprocess.Popen(
            [config.python, "-I", "-m", "runtime.worker", str(config.address_space_mb << 20)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_ENV,
            start_new_session=True,
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._in = self._process.stdout.fileno()
        self._out = self._process.stdin.fileno()

    def __enter__(self) -> RawWorker:
        self._expect("ready")
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()
        self._process.wait(timeout=10)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()

    def _expect(self, kind: str) -> dict[str, Any]:
        readable, _, _ = select.select([self._in], [], [], _READ_TIMEOUT_S)
        if not readable:
            raise RuntimeError(f"the worker sent no {kind!r} within {_READ_TIMEOUT_S:g} s")
        message: dict[str, Any] = json.loads(protocol.read_frame(self._in))
        if message.get("t") != kind:
            raise RuntimeError(f"worker sent {message.get('t')!r}, expected {kind!r}")
        return message

    def run(self, frame: bytes, split: Split) -> None:
        """Send one run (a script that emits nothing), wait for its result and for `ready`."""
        started = time.perf_counter()
        protocol.write_frame(self._out, frame)
        result = self._expect("result")
        answered = time.perf_counter()
        self._expect("ready")
        split.to_result.append(answered - started)
        split.to_ready.append(time.perf_counter() - answered)
        if result.get("status") != "success":
            raise RuntimeError(f"raw run failed: {result.get('error')}")
