"""Hostile scripts end with a clear status within deadline + 0.5 s and the pool keeps working.

THREATS rows R1-R11.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.egress import EgressClient
from runtime.host import Host
from runtime.model import ErrorCode, RunResult, RunStatus
from runtime.pool import PoolConfig, WorkerPool
from tests.conftest import run_script

DEADLINE_S = 1.0
SLACK_S = 0.5


async def _timed(pool: WorkerPool, script: str, **options: Any) -> tuple[RunResult, float]:
    started = time.monotonic()
    result = await run_script(pool, script, wall_time_s=DEADLINE_S, **options)
    return result, time.monotonic() - started


async def _assert_pool_works(pool: WorkerPool) -> None:
    """Both workers (the replaced one too) run a normal script."""
    results = await asyncio.gather(*(run_script(pool, "DOMO.log('ok')") for _ in range(4)))
    assert [r.logs for r in results] == [["ok"]] * 4


async def _assert_timeout(pool: WorkerPool, script: str) -> RunResult:
    result, elapsed = await _timed(pool, script)
    assert result.status is RunStatus.TIMEOUT
    assert result.error is not None
    assert result.error.code == ErrorCode.TIMEOUT
    assert elapsed < DEADLINE_S + SLACK_S
    await _assert_pool_works(pool)
    return result


async def test_r1_infinite_loop(pool: WorkerPool) -> None:
    await _assert_timeout(pool, "while(true){}")


async def test_r2_catch_and_retry_loop(pool: WorkerPool) -> None:
    await _assert_timeout(
        pool, "for(;;){ try { while(true){} } catch (e) { continue } finally { continue } }"
    )


async def test_r5_catastrophic_regex(pool: WorkerPool) -> None:
    await _assert_timeout(pool, "/^(a+)+$/.test('a'.repeat(40) + 'b')")


async def test_r6_endless_logging_is_capped(pool: WorkerPool) -> None:
    result = await _assert_timeout(pool, "while(true) DOMO.log('x'.repeat(1000))")
    assert result.logs[-1] == "[log truncated]"
    assert sum(len(line) for line in result.logs) <= 1024 * 1024 + 100


async def test_r6_log_cap_of_a_connector(pool: WorkerPool) -> None:
    result = await run_script(
        pool, "for (let i = 0; i < 100; i++) DOMO.log('line ' + i)", log_bytes=100
    )
    assert result.status is RunStatus.SUCCESS
    assert result.logs[-1] == "[log truncated]"
    assert sum(len(line) for line in result.logs[:-1]) <= 100


async def test_killed_run_keeps_its_logs(pool: WorkerPool) -> None:
    result, _ = await _timed(pool, "DOMO.log('before'); console.log('spinning'); while(true){}")
    assert result.status is RunStatus.TIMEOUT
    assert result.logs == ["before", "spinning"]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize(
    "script",
    [
        "let a = []; while (true) a.push('x'.repeat(1000) + a.length)",
        "let a = []; while (true) a.push({n: a.length, s: 'abc'})",
        "let s = 'x'; while (true) s = s + s",
    ],
    ids=["strings", "objects", "doubling"],
)
async def test_r3_memory_bomb(pool: WorkerPool, script: str) -> None:
    before = _rss_mb()
    result, elapsed = await _timed(pool, script)
    assert result.status in (RunStatus.ERROR, RunStatus.TIMEOUT)
    assert result.error is not None
    assert result.error.code in (ErrorCode.MEMORY_LIMIT, ErrorCode.SCRIPT_EXCEPTION)
    if result.error.code == ErrorCode.SCRIPT_EXCEPTION:
        assert "string too long" in result.error.message
    assert elapsed < DEADLINE_S + SLACK_S
    assert _rss_mb() - before < 50
    await _assert_pool_works(pool)


async def test_r3_memory_bomb_caught_and_retried(pool: WorkerPool) -> None:
    script = "for(;;){ try { let a=[]; while(true) a.push('y'.repeat(4096)) } catch (e) {} }"
    await _assert_timeout(pool, script)


async def test_r4_deep_recursion(pool: WorkerPool) -> None:
    result = await run_script(pool, "function down(n) { return down(n + 1) + 1 }\ndown(0)")
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert result.error.code == ErrorCode.STACK_OVERFLOW
    assert "stack" in result.error.message
    await _assert_pool_works(pool)


async def test_r7_result_row_cap(pool: WorkerPool) -> None:
    script = """
        datagrid.addColumn('n', datagrid.DATA_TYPE_LONG);
        for (let i = 0; i < 50000; i++) { datagrid.addCell(i); datagrid.endRow(); }
    """
    result = await run_script(pool, script, result_rows=20_000)
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert result.error.code == ErrorCode.RESULT_LIMIT
    assert result.rows == []
    assert result.columns == []
    await _assert_pool_works(pool)


async def test_r7_giant_cells_hit_the_result_size_cap(pool: WorkerPool) -> None:
    script = """
        datagrid.addColumn('blob', datagrid.DATA_TYPE_STRING);
        const big = 'z'.repeat(8 * 1024 * 1024);
        for (let i = 0; i < 1000; i++) { datagrid.addCell(big + i); datagrid.endRow(); }
    """
    before = _rss_mb()
    result = await run_script(pool, script)
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert result.error.code == ErrorCode.RESULT_LIMIT
    assert result.rows == []
    assert _rss_mb() - before < 200


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("typeof XMLHttpRequest", "undefined"),
        ("typeof fetch", "undefined"),
        ("typeof require", "undefined"),
        ("typeof std", "undefined"),
        ("typeof os", "undefined"),
        ("typeof process", "undefined"),
        ("typeof setTimeout", "undefined"),
        ("typeof setInterval", "undefined"),
        ("typeof __gw_host", "undefined"),
        ("typeof __gw_run", "undefined"),
        ("typeof __gw_finish", "undefined"),
    ],
)
async def test_r8_no_file_process_or_socket_globals(
    pool: WorkerPool, expression: str, expected: str
) -> None:
    result = await run_script(pool, f"DOMO.log({expression})")
    assert result.logs == [expected]


async def test_r8_dynamic_import_fails(pool: WorkerPool) -> None:
    script = """
        let outcome = 'pending';
        import('os').then(() => { outcome = 'loaded' }, (e) => { outcome = 'refused' })
            .then(() => DOMO.log(outcome));
    """
    result = await run_script(pool, script)
    assert result.logs == ["refused"]


async def test_r9_second_run_sees_nothing_of_the_first(pool: WorkerPool) -> None:
    solo = WorkerPool(PoolConfig(size=1))
    await solo.start()
    try:
        first = """
            var leaked = 'first-run'; globalThis.shared = metadata.account.password;
            httprequest.addHeader('X-Secret', 'abc'); httprequest.addParameter('k', 'v');
            DOMO.setStateLocal = 1; Object.prototype.polluted = 'yes';
        """
        await run_script(solo, first, account={"password": "first-secret"})
        second = """
            DOMO.log([typeof leaked, typeof shared, httprequest.getHeader('X-Secret'),
                      ({}).polluted, DOMO.setStateLocal, JSON.stringify(metadata.account)]);
        """
        result = await run_script(solo, second)
        assert result.logs == ['["undefined","undefined",null,null,null,"{}"]']
    finally:
        await solo.close()


async def test_r10_tampering_with_the_host_api_does_not_last(pool: WorkerPool) -> None:
    solo = WorkerPool(PoolConfig(size=1))
    await solo.start()
    try:
        tamper = """
            httprequest.get = () => 'hijacked'; DOMO.log = () => {};
            JSON.stringify = () => 'broken'; Array.prototype.push = null;
            datagrid.addColumn = null;
        """
        await run_script(solo, tamper)
        result = await run_script(
            solo,
            "DOMO.log(String(httprequest.get).includes('hijacked'));"
            "datagrid.addColumn('a', datagrid.DATA_TYPE_STRING); datagrid.addCell('x');"
            "datagrid.endRow();",
        )
        assert result.status is RunStatus.SUCCESS
        assert result.logs == ["false"]
        assert result.rows == [["x"]]
    finally:
        await solo.close()


@pytest.fixture
async def counting_upstream() -> AsyncIterator[tuple[TestServer, list[int]]]:
    """A local upstream that counts the requests it gets."""
    hits: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(1)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, hits
    await server.close()


async def test_r11_http_call_flood_is_capped(
    pool: WorkerPool, egress: EgressClient, counting_upstream: tuple[TestServer, list[int]]
) -> None:
    server, hits = counting_upstream
    url = str(server.make_url("/"))
    script = (
        f"for (let i = 0; i < 100000; i++) {{ try {{ httprequest.get('{url}') }} catch (e) {{}} }}"
    )
    result = await run_script(pool, script, host=Host(http=egress.session(None)), http_calls=25)
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert result.error.code == ErrorCode.HTTP_CALL_LIMIT
    assert len(hits) == 25
    await _assert_pool_works(pool)


async def test_datagrid_error_ends_the_run_even_when_caught(pool: WorkerPool) -> None:
    script = """
        try { datagrid.error(42, 'first') } catch (e) { DOMO.log('caught') }
        datagrid.error(43, 'second');
    """
    result = await run_script(pool, script)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert (result.error.code, result.error.message, result.error.line) == (42, "first", 2)
    assert result.logs == []
    await _assert_pool_works(pool)


async def test_host_calls_after_datagrid_error_are_refused(
    pool: WorkerPool, egress: EgressClient, counting_upstream: tuple[TestServer, list[int]]
) -> None:
    server, hits = counting_upstream
    url = str(server.make_url("/"))
    script = f"try {{ datagrid.error('E1', 'stop') }} catch (e) {{}}\nhttprequest.get('{url}')"
    result = await run_script(pool, script, host=Host(http=egress.session(None)))
    assert result.status is RunStatus.FAILED
    assert hits == []


async def test_killed_worker_is_replaced(pool: WorkerPool) -> None:
    await _timed(pool, "while(true){}")
    await asyncio.sleep(0)  # let the replacement start
    for _ in range(50):
        stats = pool.stats()
        if stats.idle == 2:
            break
        await asyncio.sleep(0.05)
    assert pool.stats().idle == 2
    await _assert_pool_works(pool)
