"""The worker pool: fair queueing across tenants, deadlines, and replacing killed workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from runtime import protocol
from runtime.execution import Execution
from runtime.host import Host
from runtime.model import RunRequest, RunResult, SyntaxCheck

log = logging.getLogger(__name__)

_WORKER_ENV: Final = {"TZ": "UTC", "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
_READY_TIMEOUT_S: Final = 30.0
CHECK_TIMEOUT_S: Final = 10.0
"""Parsing is linear and the largest script is 1 MiB: far more than a parse ever takes."""


class PoolBusy(Exception):
    """No run can be queued now; retry after `retry_after` seconds.

    `tenant_full` tells a full per-tenant queue (HTTP 429) from a full pool (HTTP 503).
    """

    def __init__(self, message: str, *, tenant_full: bool, retry_after: int) -> None:
        super().__init__(message)
        self.tenant_full = tenant_full
        self.retry_after = retry_after


class PoolClosed(Exception):
    """The pool is shutting down."""


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """How many workers, how big, and how much may wait (SPEC 9.1 defaults)."""

    size: int = 2
    address_space_mb: int = 1024
    max_in_flight_per_tenant: int = 64
    max_waiting_per_tenant: int = 1000
    max_waiting: int = 10_000
    recycle_rss_mb: int = 512
    recycle_after_runs: int = 10_000
    python: str = sys.executable
    prelude_bytecode: bool = True
    """Load the prelude as bytecode compiled once per worker (False: parse it every run)."""


@dataclass(slots=True)
class PoolStats:
    """A snapshot for `/readyz` and metrics."""

    idle: int
    busy: int
    starting: int
    waiting: int


@dataclass(eq=False, slots=True)
class WorkerProcess:
    """One worker process and its pipes."""

    process: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    runs: int = 0
    rss: int = 0
    last_size: int = 0
    """Size in bytes of the last frame read (the pool bounds what it holds in memory)."""

    async def send(self, frame: bytes) -> None:
        """Write a frame to the worker."""
        self.writer.write(frame)
        await self.writer.drain()

    async def read(self) -> dict[str, object]:
        """Read the worker's next message."""
        message, self.last_size = await protocol.read_message(self.reader)
        return message

    async def kill(self) -> None:
        """Kill the process (it may be running a hostile script) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            await self.process.wait()
        self.writer.close()


@dataclass(slots=True)
class _Tenant:
    waiting: deque[asyncio.Future[WorkerProcess]] = field(default_factory=deque)
    in_flight: int = 0


class WorkerPool:
    """Runs scripts on a fixed number of worker processes, one run at a time per worker."""

    def __init__(self, config: PoolConfig) -> None:
        self._config = config
        self._idle: deque[WorkerProcess] = deque()
        self._busy: set[WorkerProcess] = set()
        self._starting = 0
        self._tenants: dict[str, _Tenant] = {}
        self._turns: deque[str] = deque()  # round-robin order of tenants with waiting runs
        self._waiting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._processes: set[WorkerProcess] = set()
        self._closed = False

    @property
    def config(self) -> PoolConfig:
        """The configuration the pool was built with."""
        return self._config

    async def start(self) -> None:
        """Start every worker and wait until all are ready."""
        results = await asyncio.gather(
            *(self._spawn() for _ in range(self._config.size)), return_exceptions=True
        )
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            await self.close()
            raise RuntimeError(f"cannot start script workers: {errors[0]}") from errors[0]

    async def close(self) -> None:
        """Stop all workers; queued runs fail with `PoolClosed`."""
        self._closed = True
        for tenant in self._tenants.values():
            for waiter in tenant.waiting:
                if not waiter.done():
                    waiter.set_exception(PoolClosed("the script pool is shutting down"))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._idle.clear()
        self._busy.clear()
        # Every process ever started and not yet reaped, including ones whose replacement or
        # start was interrupted just now.
        await asyncio.gather(
            *(self._kill(w) for w in list(self._processes)), return_exceptions=True
        )

    def worker_pids(self) -> list[int]:
        """Process ids of the workers alive now (to inspect their confinement)."""
        return [w.process.pid for w in self._processes if w.process.returncode is None]

    def stats(self) -> PoolStats:
        """Workers by state and runs waiting."""
        return PoolStats(len(self._idle), len(self._busy), self._starting, self._waiting)

    async def run(self, request: RunRequest, host: Host) -> RunResult:
        """Run one script and return its result; never raises for anything the script does.

        Raises:
            PoolBusy: the queue is full (for this tenant or in all).
            PoolClosed: the pool is shutting down.
        """
        worker = await self._acquire(request.tenant)
        execution = Execution(request, host)
        try:
            outcome = await execution.drive(worker)
        except BaseException:
            await self._discard(worker)
            self._release_tenant(request.tenant)
            raise
        self._release_tenant(request.tenant)
        if outcome.reusable:
            self._track(self._await_ready(worker, outcome.deadline))
        else:
            await self._discard(worker)
        return outcome.result

    async def check_syntax(self, script: str, *, tenant: str = "local") -> SyntaxCheck:
        """Parse `script` on a worker as a run would, running none of it.

        A worker that fails to answer is replaced, and the answer says the script could not
        be checked.

        Raises:
            PoolBusy: the queue is full (for this tenant or in all).
            PoolClosed: the pool is shutting down.
        """
        worker = await self._acquire(tenant)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await worker.send(protocol.encode({"t": "check", "script": script}))
                answer = await worker.read()
            if answer.pop("t", None) != "checked":
                raise protocol.ProtocolError("expected the answer to a check")
            check = SyntaxCheck.model_validate(answer)
        except (TimeoutError, protocol.ProtocolError, ValueError):
            await self._discard(worker)
            self._release_tenant(tenant)
            return SyntaxCheck(
                ok=False, message="the script could not be checked (the worker failed)"
            )
        except BaseException:
            await self._discard(worker)
            self._release_tenant(tenant)
            raise
        self._release_tenant(tenant)
        self._busy.discard(worker)
        self._make_idle(worker)
        return check

    # --- scheduling -------------------------------------------------------------------
    async def _acquire(self, tenant_name: str) -> WorkerProcess:
        if self._closed:
            raise PoolClosed("the script pool is shutting down")
        tenant = self._tenants.setdefault(tenant_name, _Tenant())
        if self._idle and not tenant.waiting and tenant.in_flight < self._limit():
            tenant.in_flight += 1
            worker = self._idle.popleft()
            self._busy.add(worker)
            return worker
        if len(tenant.waiting) >= self._config.max_waiting_per_tenant:
            raise PoolBusy(
                "too many runs of this customer are waiting", tenant_full=True, retry_after=5
            )
        if self._waiting >= self._config.max_waiting:
            raise PoolBusy("too many runs are waiting", tenant_full=False, retry_after=5)
        waiter: asyncio.Future[WorkerProcess] = asyncio.get_running_loop().create_future()
        tenant.waiting.append(waiter)
        self._waiting += 1
        if tenant_name not in self._turns:
            self._turns.append(tenant_name)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed a worker at the moment we were cancelled: give it back.
                self._busy.discard(waiter.result())
                tenant.in_flight -= 1
                self._make_idle(waiter.result())
            elif waiter in tenant.waiting:
                tenant.waiting.remove(waiter)
                self._waiting -= 1
            raise

    def _limit(self) -> int:
        return self._config.max_in_flight_per_tenant

    def _make_idle(self, worker: WorkerProcess) -> None:
        """Give a ready worker to the next tenant in turn, or park it."""
        for _ in range(len(self._turns)):
            name = self._turns.popleft()
            tenant = self._tenants[name]
            while tenant.waiting and tenant.waiting[0].done():
                _cancelled = tenant.waiting.popleft()
                self._waiting -= 1
            if not tenant.waiting:
                continue
            if tenant.in_flight >= self._limit():
                self._turns.append(name)
                continue
            waiter = tenant.waiting.popleft()
            self._waiting -= 1
            if tenant.waiting:
                self._turns.append(name)
            tenant.in_flight += 1
            self._busy.add(worker)
            waiter.set_result(worker)
            return
        self._idle.append(worker)

    def _release_tenant(self, name: str) -> None:
        tenant = self._tenants[name]
        tenant.in_flight -= 1
        if not tenant.waiting and not tenant.in_flight:
            del self._tenants[name]
        elif tenant.waiting and self._idle:
            self._make_idle(self._idle.popleft())

    # --- worker lifecycle -------------------------------------------------------------
    def _track(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _await_ready(self, worker: WorkerProcess, deadline: float) -> None:
        """Wait for the worker to finish the run and prepare its next Context."""
        try:
            async with asyncio.timeout_at(max(deadline, asyncio.get_running_loop().time() + 1)):
                message = await worker.read()
            # After its result a worker says nothing but `ready` (decision 0009).
            if message.get("t") != "ready":
                raise protocol.ProtocolError("a message after the result")
        except (TimeoutError, protocol.ProtocolError):
            await self._discard(worker)
            return
        worker.rss = int(message.get("rss") or 0)  # type: ignore[call-overload]
        worker.runs += 1
        self._busy.discard(worker)
        if self._should_recycle(worker):
            self._track(self._replace(worker))
        else:
            self._make_idle(worker)

    def _should_recycle(self, worker: WorkerProcess) -> bool:
        config = self._config
        return (
            worker.rss > config.recycle_rss_mb * 1024 * 1024
            or worker.runs >= config.recycle_after_runs
        )

    async def _discard(self, worker: WorkerProcess) -> None:
        self._busy.discard(worker)
        self._track(self._replace(worker))

    async def _kill(self, worker: WorkerProcess) -> None:
        await worker.kill()
        self._processes.discard(worker)

    async def _replace(self, worker: WorkerProcess) -> None:
        await self._kill(worker)
        if self._closed:
            return
        try:
            await self._spawn()
        except (OSError, RuntimeError, protocol.ProtocolError) as exc:
            log.error("script worker could not be replaced: %s", exc)

    async def _spawn(self) -> None:
        self._starting += 1
        try:
            worker = await self._start_process()
        finally:
            self._starting -= 1
        if self._closed:
            await self._kill(worker)
            return
        self._make_idle(worker)

    async def _start_process(self) -> WorkerProcess:
        config = self._config
        process = await asyncio.create_subprocess_exec(
            config.python,
            "-I",
            "-m",
            "runtime.worker",
            str(config.address_space_mb * 1024 * 1024),
            *(() if config.prelude_bytecode else ("source",)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            env=_WORKER_ENV,
            start_new_session=True,
        )
        assert process.stdout is not None
        assert process.stdin is not None
        worker = WorkerProcess(process, process.stdout, process.stdin)
        self._processes.add(worker)
        try:
            async with asyncio.timeout(_READY_TIMEOUT_S):
                message = await worker.read()
        except (TimeoutError, protocol.ProtocolError) as exc:
            await self._kill(worker)
            raise RuntimeError(f"script worker did not start (exit {process.returncode})") from exc
        if message.get("t") != "ready":
            await self._kill(worker)
            raise RuntimeError("script worker sent an unexpected first message")
        return worker
