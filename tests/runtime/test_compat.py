"""Scripts written for Domo run unmodified (SPEC 3.4): the browser-like environment they
assume (UTC dates, pure built-ins, sloppy mode, modern syntax, loose argument handling) and
values that must survive the trip between Python and QuickJS (big integers, any Unicode).

The polyfills themselves are tested in depth in test_polyfills.py; here they are only shown
to be reachable from a real run.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.egress import EgressClient
from runtime.host import Host
from runtime.model import Column, ColumnType, ErrorCode, RunResult, RunStatus
from runtime.pool import PoolConfig, WorkerPool
from tests.conftest import run_script

PAGES: dict[int, str] = {
    1: '[{"id": 1, "name": "a"}]',
    2: '{"id": 2, "extra": true}',
    3: '[{"id": 3, "name": "c", "score": 1.5}]',
}


@dataclass
class Upstream:
    """The fake upstream: `/echo` answers the body it got, `/pages/{n}` serves `PAGES`."""

    base: str = ""
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


UPSTREAM = web.AppKey("upstream", Upstream)


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    upstream = request.app[UPSTREAM]
    upstream.bodies.append(body)
    upstream.headers.append(dict(request.headers))
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def _page(request: web.Request) -> web.Response:
    page = PAGES.get(int(request.match_info["n"]))
    if page is None:
        return web.Response(status=404, text="no such page")
    return web.Response(text=page, content_type="application/json")


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream()
    app = web.Application()
    app[UPSTREAM] = state
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/pages/{n}", _page)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.base = str(server.make_url("")).rstrip("/")
    yield state
    await server.close()


@pytest.fixture
def host(egress: EgressClient) -> Host:
    return Host(http=egress.session(None))


def _assert_success(result: RunResult) -> None:
    assert result.status is RunStatus.SUCCESS, result.error


async def _logged_json(pool: WorkerPool, script: str) -> object:
    result = await run_script(pool, script)
    _assert_success(result)
    assert len(result.logs) == 1, result.logs
    return json.loads(result.logs[0])


# --- the time zone ------------------------------------------------------------------------


@pytest.fixture
def new_york_process_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test process itself runs in America/New_York."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    assert time.localtime(0).tm_hour == 19  # the zone really applies to this process
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york_process_zone")
async def test_local_time_is_utc_whatever_the_host_zone() -> None:
    # A pool started while the gateway's own zone is New York.
    pool = WorkerPool(PoolConfig(size=1))
    await pool.start()
    try:
        script = """
            const epoch = new Date(0);
            const summer = new Date(Date.UTC(2024, 6, 1, 12, 30));
            DOMO.log(JSON.stringify([
                epoch.getHours(), epoch.getTimezoneOffset(), epoch.getDate(),
                summer.getHours(), summer.getTimezoneOffset(),
                new Date(2024, 0, 15).toISOString(),
                new Date('2024-03-10T08:00:00').toISOString(),
            ]));
            DOMO.log(epoch.toString());
        """
        result = await run_script(pool, script)
    finally:
        await pool.close()
    _assert_success(result)
    assert json.loads(result.logs[0]) == [
        0,
        0,
        1,
        12,
        0,
        "2024-01-15T00:00:00.000Z",
        "2024-03-10T08:00:00.000Z",
    ]
    assert "GMT+0000" in result.logs[1]
    assert result.logs[1].startswith("Thu Jan 01 1970 00:00:00")


# --- built-ins ----------------------------------------------------------------------------


async def test_browser_built_ins_exist_and_work(pool: WorkerPool) -> None:
    script = """
        const original = {nested: {v: 1}, list: [1, {d: new Date(0)}], map: new Map([['k', 1]])};
        const copy = structuredClone(original);
        copy.nested.v = 2;
        const url = new URL('https://api.example.com:8443/v1/items?limit=5#top');
        url.searchParams.append('q', 'a b');
        const bytes = new TextEncoder().encode('é€😀');
        DOMO.log(JSON.stringify({
            clone: [original.nested.v, copy.nested.v, copy.list[1].d instanceof Date,
                    copy.list[1].d.getTime(), copy.map.get('k'), copy.map !== original.map],
            base64: [btoa('hello'), atob('aGVsbG8=')],
            url: [url.hostname, url.port, url.pathname, url.searchParams.get('limit'),
                  url.hash, url.href],
            params: new URLSearchParams({a: '1 2', b: '&'}).toString(),
            parsed: new URLSearchParams('x=1&y=%C3%A9&x=2').getAll('x').concat(
                new URLSearchParams('y=%C3%A9').get('y')),
            encoded: Array.from(bytes),
            decoded: new TextDecoder().decode(bytes),
        }));
    """
    assert await _logged_json(pool, script) == {
        "clone": [1, 2, True, 0, 1, True],
        "base64": ["aGVsbG8=", "hello"],
        "url": [
            "api.example.com",
            "8443",
            "/v1/items",
            "5",
            "#top",
            "https://api.example.com:8443/v1/items?limit=5&q=a+b#top",
        ],
        "params": "a=1+2&b=%26",
        "parsed": ["1", "2", "é"],
        "encoded": list("é€😀".encode()),
        "decoded": "é€😀",
    }


async def test_there_are_no_timers_and_no_fetch(pool: WorkerPool) -> None:
    names = ["setTimeout", "setInterval", "clearTimeout", "fetch", "XMLHttpRequest"]
    script = f"DOMO.log(JSON.stringify({json.dumps(names)}.map((n) => typeof globalThis[n])))"
    assert await _logged_json(pool, script) == ["undefined"] * len(names)


# --- script modes -------------------------------------------------------------------------


async def test_sloppy_mode_scripts_assign_undeclared_variables(pool: WorkerPool) -> None:
    script = """
        counter = 1;
        function bump() { counter += 1; total = counter * 10; }
        bump();
        var declared = 'v';
        const selfOfFunction = (function () { return this; })();
        DOMO.log(JSON.stringify([counter, total, this === globalThis, globalThis.total,
                                 globalThis.declared, selfOfFunction === globalThis]));
    """
    assert await _logged_json(pool, script) == [2, 20, True, 20, "v", True]


async def test_strict_mode_scripts_refuse_undeclared_variables(pool: WorkerPool) -> None:
    script = "'use strict';\nDOMO.log('start');\nundeclaredTotal = 1;\nDOMO.log('never');\n"
    result = await run_script(pool, script)
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert (result.error.code, result.error.line) == (ErrorCode.SCRIPT_EXCEPTION, 3)
    assert result.error.message == "ReferenceError: undeclaredTotal is not defined"
    assert result.logs == ["start"]


async def test_es2015_and_later_syntax(pool: WorkerPool) -> None:
    script = """
        const base = 10;
        const add = (a, b = base) => a + b;
        class Shape {
            constructor(n) { this.n = n; }
            get double() { return this.n * 2; }
            static of(n) { return new Shape(n); }
        }
        class Square extends Shape { area() { return this.n ** 2; } }
        const {x, y: [first, ...rest], z = 'dz'} = {x: 1, y: [2, 3, 4]};
        const map = new Map([['k', 1]]);
        map.set('j', 2);
        const pairs = [];
        for (const [key, value] of map) pairs.push(`${key}=${value}`);
        const closures = [];
        for (let i = 0; i < 3; i++) closures.push(() => i);
        const maybe = {inner: null};
        DOMO.log(JSON.stringify({
            defaults: [add(1), add(1, 2)],
            classes: [Shape.of(3).double, new Square(4).area(), new Square(1) instanceof Shape],
            destructuring: [x, first, rest, z],
            spread: [{...{a: 1}, b: 2}, Math.max(...[1, 5, 3]), [...new Set([1, 1, 2, 3])]],
            template: `sum ${add(2, 3)} of ${[1, 2].length} items`,
            forOf: pairs,
            blockScope: closures.map((f) => f()),
            optional: [maybe.inner?.deep, maybe.missing?.(), maybe.inner ?? 'fallback',
                       0 ?? 'zero kept'],
            generator: [...(function* () { yield 'g1'; yield 'g2'; })()],
        }));
    """
    assert await _logged_json(pool, script) == {
        "defaults": [11, 3],
        "classes": [6, 16, True],
        "destructuring": [1, 2, [3, 4], "dz"],
        "spread": [{"a": 1, "b": 2}, 5, [1, 2, 3]],
        "template": "sum 5 of 2 items",
        "forOf": ["k=1", "j=2"],
        "blockScope": [0, 1, 2],
        "optional": [None, None, "fallback", 0],
        "generator": ["g1", "g2"],
    }


async def test_async_functions_and_then_callbacks_run_before_the_run_ends(
    pool: WorkerPool,
) -> None:
    script = """
        const order = [];
        async function fetchTotal() {
            const value = await Promise.resolve(41);
            order.push('awaited');
            return value + 1;
        }
        fetchTotal().then((total) => {
            order.push('then');
            datagrid.addColumn('total', datagrid.DATA_TYPE_LONG);
            datagrid.addCell(total);
            datagrid.endRow();
            DOMO.log(JSON.stringify(order));
        });
        order.push('sync');
        DOMO.log('script end');
    """
    result = await run_script(pool, script)
    _assert_success(result)
    assert result.logs == ["script end", '["sync","awaited","then"]']
    assert result.rows == [[42]]


# --- loose arguments ----------------------------------------------------------------------


async def test_functions_ignore_extra_arguments_and_coerce_like_javascript(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    script = f"""
        httprequest.addHeader('X-Count', 5, 'ignored');
        const header = httprequest.getHeader('X-Count', 'ignored');
        DOMO.log(JSON.stringify([header, typeof header]));
        httprequest.post({json.dumps(upstream.base + "/echo")}, 12345, 'ignored');
        DOMO.log(DOMO.md5(12345, 'ignored') === DOMO.md5('12345'));
        DOMO.log(DOMO.b64EncodeUnicode(7));
        datagrid.addColumn('text', datagrid.DATA_TYPE_STRING, 'ignored');
        datagrid.addColumn('long', datagrid.DATA_TYPE_LONG);
        datagrid.addColumn('double', datagrid.DATA_TYPE_DOUBLE);
        datagrid.addCell(5, 'ignored');
        datagrid.addCell('42');
        datagrid.addCell('2.5');
        datagrid.endRow('ignored');
    """
    result = await run_script(pool, script, host=host)
    _assert_success(result)
    assert result.logs == ['["5","string"]', "true", "Nw=="]
    assert upstream.headers[0]["X-Count"] == "5"
    assert upstream.bodies == [b"12345"]
    assert result.columns == [
        Column(name="text", type=ColumnType.STRING),
        Column(name="long", type=ColumnType.LONG),
        Column(name="double", type=ColumnType.DOUBLE),
    ]
    assert result.rows == [["5", 42, 2.5]]


# --- values crossing the boundary ---------------------------------------------------------


async def test_integers_beyond_32_bits_survive_both_ways(pool: WorkerPool) -> None:
    script = """
        const big = metadata.parameters.big;
        DOMO.log(big === 2 ** 40 + 1);
        DOMO.log(big + 1);
        DOMO.log(2 ** 40);
        DOMO.log(metadata.parameters.nested.ids[1] - 1);
        datagrid.addColumn('n', datagrid.DATA_TYPE_LONG);
        datagrid.addCell(2 ** 53 - 1); datagrid.endRow();
        datagrid.addCell(-(2 ** 53 - 1)); datagrid.endRow();
        datagrid.addCell(big); datagrid.endRow();
    """
    parameters: dict[str, object] = {"big": 2**40 + 1, "nested": {"ids": [1, 2**35]}}
    result = await run_script(pool, script, parameters=parameters)
    _assert_success(result)
    assert result.logs == ["true", "1099511627778", "1099511627776", "34359738367"]
    assert result.rows == [[2**53 - 1], [-(2**53 - 1)], [2**40 + 1]]


async def test_a_paging_loop_accumulates_magic_parsed_rows(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    script = f"""
        const url = {json.dumps(upstream.base + "/pages/")};
        let page = 1;
        let body = httprequest.get(url + page);
        while (httprequest.getStatusCode() === 200) {{
            if (page === 3) datagrid.magicParseJSON(body);   // the JSON text itself
            else datagrid.magicParseJSON(JSON.parse(body));   // an array, then an object
            page += 1;
            body = httprequest.get(url + page);
        }}
        DOMO.log(page);
    """
    result = await run_script(pool, script, host=host)
    _assert_success(result)
    assert result.logs == ["4"]
    assert [entry.status for entry in result.http] == [200, 200, 200, 404]
    assert result.columns == [
        Column(name="id", type=ColumnType.LONG),
        Column(name="name", type=ColumnType.STRING),
        Column(name="extra", type=ColumnType.BOOLEAN),
        Column(name="score", type=ColumnType.DOUBLE),
    ]
    assert result.rows == [[1, "a", None, None], [2, None, True, None], [3, "c", None, 1.5]]


async def test_non_ascii_and_emoji_survive_logs_cells_and_request_bodies(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    text = "Zürich — 東京 😀 naïve ﬁ"
    script = f"""
        const text = metadata.parameters.text;
        DOMO.log(text);
        DOMO.log([...text].length + ' ' + text.length);
        datagrid.addColumn('text', datagrid.DATA_TYPE_STRING);
        datagrid.addCell(text);
        datagrid.endRow();
        const reply = httprequest.post({json.dumps(upstream.base + "/echo")}, text);
        DOMO.log(reply === text);
        DOMO.log(reply);
    """
    result = await run_script(pool, script, host=host, parameters={"text": text})
    _assert_success(result)
    utf16_units = len(text.encode("utf-16-le")) // 2
    assert result.logs == [text, f"{len(text)} {utf16_units}", "true", text]
    assert result.rows == [[text]]
    assert upstream.bodies == [text.encode()]


async def test_a_lone_surrogate_in_a_log_line_becomes_a_replacement_character(
    pool: WorkerPool,
) -> None:
    script = r"DOMO.log('before \ud83d after'); console.log('\udc00', 'x'); DOMO.log('next');"
    result = await run_script(pool, script)
    _assert_success(result)
    assert result.logs == ["before \ufffd after", "\ufffd x", "next"]
