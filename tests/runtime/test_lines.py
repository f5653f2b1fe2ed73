"""An error thrown inside the prelude on a script's behalf reports the script's line."""

from __future__ import annotations

import pytest

from runtime.model import ErrorCode, RunStatus
from runtime.pool import WorkerPool
from tests.conftest import run_script


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("DOMO.sleep(Symbol())", ErrorCode.SCRIPT_EXCEPTION),
        ("httprequest.addHeader(Object.create(null))", ErrorCode.SCRIPT_EXCEPTION),
        ("datagrid.addColumn('a', 'LONG'); datagrid.addCell(Symbol())", ErrorCode.BAD_CELL),
        ("datagrid.addColumn(Object.create(null))", ErrorCode.SCRIPT_EXCEPTION),
        ("DOMO.md5({toString() { throw new TypeError('deep'); }})", ErrorCode.SCRIPT_EXCEPTION),
        ("console.log({toJSON: () => 1n, toString: null})", ErrorCode.SCRIPT_EXCEPTION),
        ("DOMO.getStartDate({start: Object.create(null)})", ErrorCode.SCRIPT_EXCEPTION),
    ],
)
@pytest.mark.parametrize("line", [1, 3, 250])
async def test_an_error_inside_the_prelude_reports_the_calling_script_line(
    pool: WorkerPool, call: str, code: ErrorCode, line: int
) -> None:
    script = "var a = 1;\n" * (line - 1) + call + "\nvar after = 1;\n"
    result = await run_script(pool, script)
    assert result.status is RunStatus.ERROR, result
    assert result.error is not None
    assert (result.error.code, result.error.line) == (code, line), result.error


async def test_a_script_function_called_by_the_prelude_reports_its_own_line(
    pool: WorkerPool,
) -> None:
    result = await run_script(
        pool, "const v = {\n  toString() { return null.x; },\n};\nhttprequest.addHeader(v);"
    )
    assert result.error is not None
    assert result.error.line == 2


@pytest.mark.parametrize(("script", "line"), [("null.x", 1), ("\n\n\n\nnull.x", 5)])
async def test_a_script_error_reports_its_own_line(
    pool: WorkerPool, script: str, line: int
) -> None:
    result = await run_script(pool, script)
    assert result.error is not None
    assert (result.error.code, result.error.line) == (ErrorCode.SCRIPT_EXCEPTION, line)


async def test_a_syntax_error_on_line_1_reports_line_1(pool: WorkerPool) -> None:
    result = await run_script(pool, "let = = 1;\nDOMO.log('never');")
    assert result.error is not None
    assert (result.error.code, result.error.line) == (ErrorCode.SYNTAX_ERROR, 1)
    assert result.logs == []


async def test_a_hashbang_line_is_still_a_comment(pool: WorkerPool) -> None:
    script = "#!/usr/bin/env node\nDOMO.log('ran');\nnull.x;\n"
    result = await run_script(pool, script)
    assert result.logs == ["ran"]
    assert result.error is not None
    assert result.error.line == 3
    assert (await pool.check_syntax(script)).ok
