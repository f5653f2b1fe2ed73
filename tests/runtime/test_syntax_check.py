"""The parse-only check (`WorkerPool.check_syntax`): a run's syntax answer, running nothing."""

from __future__ import annotations

import pytest

from runtime.model import ErrorCode, SyntaxCheck
from runtime.pool import WorkerPool
from tests.conftest import run_script


async def test_a_good_script_is_ok(pool: WorkerPool) -> None:
    check = await pool.check_syntax("datagrid.addColumn('a');\nDOMO.log(metadata.account);\n")
    assert check == SyntaxCheck(ok=True)


@pytest.mark.parametrize(
    ("script", "line", "column"),
    [
        ("let = = 1;", 1, 7),
        ("var a = 1;\n" * 6 + "  if (a { }\n", 7, 9),
        ("return 1;", 1, 1),
        ("'use strict';\nvar a = 1;\nwith (a) {}", 3, 1),
        ("}); while (true) {} (function () {", 1, 1),
    ],
)
async def test_a_syntax_error_agrees_with_what_a_run_reports(
    pool: WorkerPool, script: str, line: int, column: int
) -> None:
    check = await pool.check_syntax(script)
    assert (check.ok, check.line, check.column) == (False, line, column), check
    run = await run_script(pool, script)
    assert run.error is not None
    assert run.error.code == ErrorCode.SYNTAX_ERROR
    assert (run.error.message, run.error.line) == (check.message, check.line)


async def test_sloppy_code_that_strict_mode_refuses_is_ok(pool: WorkerPool) -> None:
    check = await pool.check_syntax("var a = {};\nwith (a) { b = 010; }\n")
    assert check.ok


async def test_a_script_that_would_loop_forever_is_only_parsed(pool: WorkerPool) -> None:
    # The run's deadline is far away; only parsing makes the check answer at all.
    check = await pool.check_syntax("while (true) {}\nfunction f() { for (;;) {} }\nf();")
    assert check.ok
    later = await run_script(pool, "DOMO.log('next')")
    assert later.logs == ["next"]


async def test_a_huge_script_is_checked(pool: WorkerPool) -> None:
    body = "datagrid.addCell('" + "x" * 60 + "');\n"
    script = body * 15_000 + "let oops = ;\n"
    check = await pool.check_syntax(script)
    assert (check.ok, check.line) == (False, 15_001)


async def test_checks_do_not_disturb_runs_on_the_same_worker(pool: WorkerPool) -> None:
    for _ in range(3):
        assert (await pool.check_syntax("x(")).ok is False
    result = await run_script(pool, "DOMO.log(typeof x)")
    assert result.logs == ["undefined"]
