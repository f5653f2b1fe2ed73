"""The prelude as bytecode behaves as its source does, and the source stays a working fallback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from runtime.bytecode import BytecodeError, BytecodePrelude, SourcePrelude, compile_prelude
from runtime.model import RunResult
from runtime.pool import PoolConfig, WorkerPool
from runtime.worker import Worker, build_prelude
from tests.conftest import run_script

# Each script's whole result must be the same either way: its error's line and message, and
# stacks that run through the prelude (their `<input>:line:column` frames are the prelude's).
SCRIPTS = (
    "null.x",
    "var a = 1;\n\n\nnull.x;\n",
    "let = = 1;",
    "#!/usr/bin/env node\nDOMO.log('ran');\nnull.x;\n",
    "DOMO.sleep(Symbol())",
    "var a = 1;\nhttprequest.addHeader(Object.create(null));",
    "datagrid.addColumn('a', 'LONG');\ndatagrid.addCell(Symbol());",
    "try { DOMO.md5({toString() { throw new TypeError('deep'); }}); }\n"
    "catch (e) { DOMO.log(e.stack); }",
    "try { DOMO.getStartDate({start: Object.create(null)}); } catch (e) { DOMO.log(e.stack); }",
    "DOMO.log(String(DOMO.log)); DOMO.log(String(datagrid.addCell));",
    "DOMO.log(new URL('http://example.com/a?b=1').searchParams.get('b'));",
    "datagrid.addColumn('v', 'STRING'); datagrid.addCell(new Error('e').stack); datagrid.endRow();",
    "datagrid.error(7, 'stopped');",
)


@pytest.fixture
async def source_pool() -> AsyncIterator[WorkerPool]:
    """A one-worker pool forced onto the fallback: the prelude's source in every Context."""
    workers = WorkerPool(PoolConfig(size=1, prelude_bytecode=False))
    await workers.start()
    yield workers
    await workers.close()


def _comparable(result: RunResult) -> dict[str, Any]:
    return result.model_dump(exclude={"duration_ms", "run_id", "started_at", "finished_at"})


def test_this_installation_loads_the_prelude_as_bytecode() -> None:
    # Otherwise every other runtime test silently exercises the fallback only.
    prelude = compile_prelude(build_prelude())
    assert isinstance(prelude, BytecodePrelude)
    assert prelude.kind == "bytecode"


def test_another_binding_version_falls_back_to_the_source() -> None:
    source = build_prelude()
    prelude = compile_prelude(source, binding_version="0.17.0.1")
    assert prelude == SourcePrelude(source)


@pytest.mark.parametrize("script", SCRIPTS)
async def test_a_run_is_the_same_with_bytecode_and_with_source(
    pool: WorkerPool, source_pool: WorkerPool, script: str
) -> None:
    by_bytecode = await run_script(pool, script)
    by_source = await run_script(source_pool, script)
    assert _comparable(by_bytecode) == _comparable(by_source)
    assert by_source.error is None or by_source.error.line is not None or "error(" in script


async def test_the_fallback_reports_the_script_line(source_pool: WorkerPool) -> None:
    result = await run_script(source_pool, "var a = 1;\nvar b = 2;\nDOMO.sleep(Symbol());\n")
    assert result.error is not None
    assert result.error.line == 3


class _Refused:
    """A prelude whose bytecode QuickJS would not take."""

    kind = "bytecode"

    def load(self, context: object) -> None:
        raise BytecodeError("refused")


@pytest.fixture
def worker() -> Iterator[Worker]:
    """A worker in this process (no sandbox, no pool) on a pipe nobody reads."""
    read_end, write_end = os.pipe()
    yield Worker(read_end, write_end)
    os.close(read_end)
    os.close(write_end)


def test_a_context_the_bytecode_failed_in_is_prepared_again_from_source(worker: Worker) -> None:
    worker._prelude = _Refused()
    context, run, finish = worker._prepare()
    assert worker._prelude.kind == "source"
    assert context.eval("typeof DOMO.log + typeof __gw_host") == "functionundefined"
    assert run is not None
    assert finish is not None
