"""The script API of SPEC 3.2/4.3: `httprequest`, `DOMO`, `auth`, `discovery`, `console`,
`metadata`, and how a run reports errors.

Every script runs in the real worker pool; HTTP goes through the real egress client to a
local aiohttp upstream on 127.0.0.1, which records what it received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from gateway.egress import EgressClient
from runtime.host import Host, StateStore
from runtime.model import (
    AuthOutcome,
    DiscoveryOption,
    ErrorCode,
    JsonValue,
    Limits,
    Metadata,
    RunMode,
    RunRequest,
    RunResult,
    RunStatus,
)
from runtime.pool import WorkerPool
from tests.conftest import run_script

REFUSING_HOSTS = ("allowed.example",)


# --- helpers ----------------------------------------------------------------------------


class MemoryState:
    """A dict-backed `DOMO.getState`/`setState` store."""

    def __init__(self) -> None:
        self.values: dict[str, JsonValue] = {}

    async def get(self, key: str) -> JsonValue:
        return self.values.get(key)

    async def set(self, key: str, value: JsonValue) -> None:
        self.values[key] = value


def _state_store() -> StateStore:
    """A fresh store, typed as the protocol so mypy checks that `MemoryState` satisfies it."""
    return MemoryState()


@dataclass(frozen=True)
class Seen:
    """One request as the upstream received it."""

    method: str
    path_qs: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive), in the order received."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Upstream:
    """The fake upstream: its base URL and the requests it got."""

    base: str = ""
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


UPSTREAM = web.AppKey("upstream", Upstream)


async def _record(request: web.Request) -> None:
    request.app[UPSTREAM].seen.append(
        Seen(
            method=request.method,
            path_qs=request.raw_path,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
            body=await request.read(),
        )
    )


async def _status(request: web.Request) -> web.Response:
    await _record(request)
    code = int(request.match_info["code"])
    return web.Response(status=code, text=f"{request.method} says {code}")


async def _repeated_headers(request: web.Request) -> web.Response:
    await _record(request)
    headers = CIMultiDict([("X-Multi", "one"), ("X-Multi", "two"), ("X-Single", "alone")])
    return web.Response(text="headers", headers=headers)


async def _echo(request: web.Request) -> web.Response:
    await _record(request)
    return web.Response(text=f"echo {request.method}")


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """A local upstream: `/status/{code}`, `/headers` (repeated ones), anything else echoes."""
    state = Upstream()
    app = web.Application()
    app[UPSTREAM] = state
    app.router.add_route("*", "/status/{code}", _status)
    app.router.add_route("*", "/headers", _repeated_headers)
    app.router.add_route("*", "/{tail:.*}", _echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.base = str(server.make_url("")).rstrip("/")
    yield state
    await server.close()


@pytest.fixture
def host(egress: EgressClient) -> Host:
    """Every host service a script may use, HTTP allowed to any host (the address check
    still applies: the egress fixture admits loopback only)."""
    return Host(http=egress.session(None), state=_state_store())


def _assert_success(result: RunResult) -> None:
    assert result.status is RunStatus.SUCCESS, result.error


async def _logs(pool: WorkerPool, script: str, **options: Any) -> list[str]:
    """Run a script that must succeed and return its log lines."""
    result = await run_script(pool, script, **options)
    _assert_success(result)
    return result.logs


async def _logged_json(pool: WorkerPool, script: str, **options: Any) -> Any:
    """Run a script that logs one JSON text and return it parsed."""
    logs = await _logs(pool, script, **options)
    assert len(logs) == 1, logs
    return json.loads(logs[0])


def _js(value: str) -> str:
    """A JavaScript string literal."""
    return json.dumps(value)


# --- httprequest ------------------------------------------------------------------------


async def test_each_method_reaches_the_upstream_with_its_method_body_and_headers(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    script = f"""
        const url = {_js(upstream.url("/items/7"))};
        httprequest.addHeader('X-Api-Key', 'k-123');
        httprequest.get(url);
        httprequest.addHeader('Content-Type', 'application/json');
        httprequest.post(url, '{{"op":"create"}}');
        httprequest.put(url, '{{"op":"replace"}}');
        httprequest.patch(url, '{{"op":"update"}}');
        httprequest.delete(url);
    """
    _assert_success(await run_script(pool, script, host=host))
    got = [(s.method, s.path_qs, s.body, s.header("X-Api-Key")) for s in upstream.seen]
    assert got == [
        ("GET", "/items/7", b"", ["k-123"]),
        ("POST", "/items/7", b'{"op":"create"}', ["k-123"]),
        ("PUT", "/items/7", b'{"op":"replace"}', ["k-123"]),
        ("PATCH", "/items/7", b'{"op":"update"}', ["k-123"]),
        ("DELETE", "/items/7", b"", ["k-123"]),
    ]
    assert [s.header("Content-Type") for s in upstream.seen[1:4]] == [["application/json"]] * 3


async def test_add_header_replaces_a_same_name_header_case_insensitively(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    script = f"""
        httprequest.addHeader('X-Token', 'first');
        httprequest.addHeader('x-token', 'second');
        DOMO.log(httprequest.getHeader('X-TOKEN'));
        DOMO.log(httprequest.getHeader('X-Absent'));
        httprequest.get({_js(upstream.url("/h"))});
    """
    result = await run_script(pool, script, host=host)
    assert result.logs == ["second", "null"]
    assert upstream.seen[0].header("X-Token") == ["second"]


async def test_headers_and_parameters_persist_until_cleared(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    script = f"""
        const url = {_js(upstream.url("/p"))};
        httprequest.addHeader('X-Kept', 'yes');
        httprequest.addParameter('page', '1');
        httprequest.get(url);
        httprequest.post(url, 'b');
        httprequest.clearHeaders();
        DOMO.log(httprequest.getHeader('X-Kept'));
        httprequest.get(url);
        httprequest.clearParameters();
        httprequest.get(url);
    """
    result = await run_script(pool, script, host=host)
    assert result.logs == ["null"]
    got = [(s.method, s.path_qs, s.header("X-Kept")) for s in upstream.seen]
    assert got == [
        ("GET", "/p?page=1", ["yes"]),
        ("POST", "/p?page=1", ["yes"]),
        ("GET", "/p?page=1", []),
        ("GET", "/p", []),
    ]


async def test_add_parameter_appends_to_the_query_string(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    base = upstream.url("/q")
    script = f"""
        httprequest.addParameter('k', 'v');
        for (const suffix of ['', '?a=1', '?', '#frag', '?a=1#frag']) {{
            httprequest.get({_js(base)} + suffix);
        }}
        httprequest.clearParameters();
        httprequest.addParameter('q', 'a b&c=d/é?');
        httprequest.addParameter('q', 'second');
        httprequest.get({_js(base)});
    """
    result = await run_script(pool, script, host=host)
    _assert_success(result)
    assert [s.path_qs for s in upstream.seen[:5]] == [
        "/q?k=v",
        "/q?a=1&k=v",
        "/q?k=v",
        "/q?k=v",  # the fragment stays after the query and is not sent
        "/q?a=1&k=v",
    ]
    encoded = upstream.seen[5].path_qs
    assert encoded.startswith("/q?q=a%20b%26c%3Dd")
    assert parse_qsl(urlsplit(encoded).query) == [("q", "a b&c=d/é?"), ("q", "second")]


async def test_every_method_returns_the_body_as_a_string_for_every_status(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    script = f"""
        const out = [];
        for (const code of [200, 404, 500]) {{
            const url = {_js(upstream.url("/status/"))} + code;
            for (const method of ['get', 'post', 'put', 'patch', 'delete']) {{
                const body = httprequest[method](url, 'payload');
                out.push([method, typeof body, body, httprequest.getStatusCode()]);
            }}
        }}
        DOMO.log(JSON.stringify(out));
    """
    out = await _logged_json(pool, script, host=host)
    assert out == [
        [method, "string", f"{method.upper()} says {code}", code]
        for code in (200, 404, 500)
        for method in ("get", "post", "put", "patch", "delete")
    ]


async def test_status_code_is_a_javascript_number(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    script = f"""
        httprequest.get({_js(upstream.url("/status/200"))});
        DOMO.log(typeof httprequest.getStatusCode());
        DOMO.log(httprequest.getStatusCode() === 200);
        httprequest.get({_js(upstream.url("/status/404"))});
        DOMO.log(httprequest.getStatusCode() === 404);
    """
    assert await _logs(pool, script, host=host) == ["number", "true", "true"]


async def test_response_header_joins_repeats_ignores_case_and_is_null_when_absent(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    script = f"""
        httprequest.get({_js(upstream.url("/headers"))});
        DOMO.log(JSON.stringify([
            httprequest.getResponseHeader('X-Multi'),
            httprequest.getResponseHeader('x-multi'),
            httprequest.getResponseHeader('X-SINGLE'),
            httprequest.getResponseHeader('X-Absent'),
        ]));
    """
    assert await _logged_json(pool, script, host=host) == ["one, two", "one, two", "alone", None]


async def test_an_object_body_is_sent_as_json(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    script = f"""
        const url = {_js(upstream.url("/o"))};
        httprequest.post(url, {{name: 'Zoë', n: [1, 2.5], ok: true, no: null}});
        httprequest.put(url, [{{a: 1}}]);
    """
    _assert_success(await run_script(pool, script, host=host))
    assert [s.body for s in upstream.seen] == [
        '{"name":"Zoë","n":[1,2.5],"ok":true,"no":null}'.encode(),
        b'[{"a":1}]',
    ]


async def test_a_refused_request_throws_a_catchable_error_naming_the_reason(
    pool: WorkerPool, egress: EgressClient, upstream: Upstream
) -> None:
    script = f"""
        try {{
            httprequest.get({_js(upstream.url("/x"))});
            DOMO.log('not refused');
        }} catch (e) {{
            DOMO.log(JSON.stringify([e instanceof Error, e.message]));
        }}
        DOMO.log('after');
    """
    host = Host(http=egress.session(REFUSING_HOSTS))
    result = await run_script(pool, script, host=host)
    _assert_success(result)
    assert result.logs == [
        '[true,"host 127.0.0.1 is not in the connector\'s allowed_hosts"]',
        "after",
    ]
    assert upstream.seen == []


async def test_an_uncaught_refusal_ends_the_run_with_egress_refused_and_the_line(
    pool: WorkerPool, egress: EgressClient, upstream: Upstream
) -> None:
    script = f"""const url = {_js(upstream.url("/x"))};
DOMO.log('before');
httprequest.get(url);
DOMO.log('after');
"""
    host = Host(http=egress.session(REFUSING_HOSTS))
    result = await run_script(pool, script, host=host)
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert result.error.code == ErrorCode.EGRESS_REFUSED
    assert result.error.line == 3
    assert result.error.message == "host 127.0.0.1 is not in the connector's allowed_hosts"
    assert result.logs == ["before"]
    assert [(e.method, e.status, e.error) for e in result.http] == [("GET", None, "egress_refused")]
    assert upstream.seen == []


async def test_the_http_trace_has_one_entry_per_request_and_never_bodies(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    script = f"""
        httprequest.addHeader('Authorization', 'Bearer header-credential');
        httprequest.get({_js(upstream.url("/status/200?page=1"))});
        httprequest.post({_js(upstream.url("/status/404"))}, 'REQUEST-BODY-TEXT');
        try {{ httprequest.get('http://user:url-password@127.0.0.1:1/'); }} catch (e) {{}}
    """
    result = await run_script(pool, script, host=host)
    _assert_success(result)
    assert [(e.method, e.url, e.status, e.error) for e in result.http] == [
        ("GET", upstream.url("/status/200?page=1"), 200, None),
        ("POST", upstream.url("/status/404"), 404, None),
        ("GET", "[invalid url]", None, "invalid_request"),
    ]
    assert all(e.duration_ms >= 0 for e in result.http)
    trace = json.dumps([e.model_dump() for e in result.http])
    for leaked in ("REQUEST-BODY-TEXT", "says", "header-credential", "url-password", "user"):
        assert leaked not in trace


async def test_the_trace_redacts_secret_query_values_and_account_secrets(
    pool: WorkerPool, host: Host, upstream: Upstream
) -> None:
    secret = "acct-secret-9876"
    script = f"""
        httprequest.get({_js(upstream.url("/r?access_token=tok-1&page=2"))});
        httprequest.addParameter('q', metadata.account.password);
        httprequest.get({_js(upstream.url("/r/"))} + metadata.account.password);
    """
    result = await run_script(
        pool, script, host=host, account={"password": secret}, secrets=(secret,)
    )
    _assert_success(result)
    assert [e.url for e in result.http] == [
        upstream.url("/r?access_token=[redacted]&page=2"),
        upstream.url("/r/[redacted]?q=[redacted]"),
    ]
    # The upstream itself got the real values.
    assert upstream.seen[1].path_qs == f"/r/{secret}?q={secret}"


# --- DOMO and console -------------------------------------------------------------------


async def test_log_renders_every_kind_of_value(pool: WorkerPool) -> None:
    script = """
        DOMO.log('text');
        DOMO.log(42);
        DOMO.log(-3.5);
        DOMO.log({a: 1, b: 'x', c: {d: [true]}});
        DOMO.log([1, 'two', null]);
        DOMO.log(null);
        DOMO.log(undefined);
        DOMO.log(new Error('boom'));
        DOMO.log(new TypeError('bad type'));
        DOMO.log(true);
    """
    assert await _logs(pool, script) == [
        "text",
        "42",
        "-3.5",
        '{"a":1,"b":"x","c":{"d":[true]}}',
        '[1,"two",null]',
        "null",
        "undefined",
        "Error: boom",
        "TypeError: bad type",
        "true",
    ]


async def test_console_log_joins_its_arguments_with_spaces(pool: WorkerPool) -> None:
    script = "console.log('total', 3, {a: 1}, [2], null, undefined); console.log('alone')"
    assert await _logs(pool, script) == ['total 3 {"a":1} [2] null undefined', "alone"]


async def test_b64_unicode_round_trips_non_ascii_text(pool: WorkerPool) -> None:
    text = "Grüße, 東京 😀 — ok"
    script = f"""
        const encoded = DOMO.b64EncodeUnicode({_js(text)});
        DOMO.log(encoded);
        DOMO.log(DOMO.b64DecodeUnicode(encoded));
        DOMO.log(DOMO.b64DecodeUnicode({_js(base64.b64encode("ünïcode".encode()).decode())}));
    """
    assert await _logs(pool, script) == [
        base64.b64encode(text.encode()).decode(),
        text,
        "ünïcode",
    ]


async def test_md5_and_hmacs_are_lower_case_hex_digests(pool: WorkerPool) -> None:
    text, key = "message to sign — é", "k3y-ü"
    script = f"""
        DOMO.log(DOMO.md5({_js(text)}));
        DOMO.log(DOMO.hmacSHA1({_js(text)}, {_js(key)}));
        DOMO.log(DOMO.hmacSHA256({_js(text)}, {_js(key)}));
    """
    assert await _logs(pool, script) == [
        hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        hmac.new(key.encode(), text.encode(), hashlib.sha1).hexdigest(),
        hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest(),
    ]


async def test_start_and_end_dates_of_a_date_selector_parameter(pool: WorkerPool) -> None:
    script = """
        const range = {start: '2024-03-01', end: '2024-03-31'};
        const out = [];
        for (const p of [range, '2024-05-06', 'period', 'day']) {
            out.push([DOMO.getStartDate(p), DOMO.getEndDate(p),
                      new Date(DOMO.getStartDate(p)).toISOString(),
                      new Date(DOMO.getEndDate(p)).toISOString()]);
        }
        DOMO.log(JSON.stringify(out));
    """
    parameters = {"period": {"start": "2023-12-30", "end": "2024-01-02"}, "day": "2022-07-15"}
    assert await _logged_json(pool, script, parameters=parameters) == [
        ["2024-03-01", "2024-03-31", "2024-03-01T00:00:00.000Z", "2024-03-31T00:00:00.000Z"],
        ["2024-05-06", "2024-05-06", "2024-05-06T00:00:00.000Z", "2024-05-06T00:00:00.000Z"],
        ["2023-12-30", "2024-01-02", "2023-12-30T00:00:00.000Z", "2024-01-02T00:00:00.000Z"],
        ["2022-07-15", "2022-07-15", "2022-07-15T00:00:00.000Z", "2022-07-15T00:00:00.000Z"],
    ]


async def test_parse_xml_makes_attributes_text_and_arrays_of_repeated_elements(
    pool: WorkerPool,
) -> None:
    xml = (
        '<feed version="2"><title>News</title>'
        '<entry id="a"><name>First</name></entry>'
        '<entry id="b"><name>Second</name></entry>'
        '<note lang="en">hello</note><empty/></feed>'
    )
    script = f"DOMO.log(JSON.stringify(DOMO.parseXML({_js(xml)})))"
    assert await _logged_json(pool, script) == {
        "feed": {
            "@version": "2",
            "title": "News",
            "entry": [{"@id": "a", "name": "First"}, {"@id": "b", "name": "Second"}],
            "note": {"@lang": "en", "#text": "hello"},
            "empty": "",
        }
    }


async def test_state_persists_through_the_host_store_between_runs(
    pool: WorkerPool, egress: EgressClient
) -> None:
    store = MemoryState()
    host = Host(http=egress.session(None), state=store)
    first = """
        DOMO.log(JSON.stringify(DOMO.getState('cursor')));
        DOMO.setState('cursor', {page: 2, since: '2024-01-01', big: 2 ** 40 + 1});
        DOMO.setState('count', 5);
    """
    assert (await run_script(pool, first, host=host)).logs == ["null"]
    assert store.values == {
        "cursor": {"page": 2, "since": "2024-01-01", "big": 2**40 + 1},
        "count": 5,
    }
    second = """
        const cursor = DOMO.getState('cursor');
        const count = DOMO.getState('count');
        DOMO.log(JSON.stringify([cursor.page + 1, cursor.since, cursor.big, count]));
    """
    assert (await run_script(pool, second, host=host)).logs == ['[3,"2024-01-01",1099511627777,5]']


async def test_sleep_waits_at_least_the_given_milliseconds(pool: WorkerPool) -> None:
    script = "const t = Date.now(); DOMO.sleep(50); DOMO.log(Date.now() - t);"
    result = await run_script(pool, script)
    _assert_success(result)
    assert int(result.logs[0]) >= 50
    assert result.duration_ms >= 50


async def test_sleep_counts_against_the_deadline(pool: WorkerPool) -> None:
    started = time.monotonic()
    result = await run_script(pool, "DOMO.sleep(5000); DOMO.log('woke')", wall_time_s=1.0)
    elapsed = time.monotonic() - started
    assert result.status is RunStatus.TIMEOUT
    assert result.error is not None
    assert result.error.code == ErrorCode.TIMEOUT
    assert result.logs == []
    assert elapsed < 1.5


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_get_jwt_signs_hs256_tokens_with_the_builder_claims(pool: WorkerPool) -> None:
    key = "jwt-signing-key"
    script = f"""
        DOMO.jwtBuilder.algorithm = 'HS256';
        DOMO.jwtBuilder.authKey = {_js(key)};
        DOMO.jwtBuilder.issuer = 'svc@example.test';
        DOMO.jwtBuilder.subject = 'user-42';
        DOMO.jwtBuilder.claims = {{scope: 'read write', tenant: 7}};
        DOMO.jwtBuilder.expiration = 600;
        DOMO.log(DOMO.getJWT());
    """
    before = int(time.time())
    logs = await _logs(pool, script)
    after = int(time.time())
    header_b64, payload_b64, signature_b64 = logs[0].split(".")
    expected = hmac.new(key.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256)
    assert hmac.compare_digest(_b64url(signature_b64), expected.digest())
    assert json.loads(_b64url(header_b64)) == {"alg": "HS256", "typ": "JWT"}
    claims = json.loads(_b64url(payload_b64))
    assert before <= claims["iat"] <= after
    assert claims == {
        "iss": "svc@example.test",
        "sub": "user-42",
        "iat": claims["iat"],
        "exp": claims["iat"] + 600,
        "scope": "read write",
        "tenant": 7,
    }


# --- auth ---------------------------------------------------------------------------------


async def test_authentication_success_reports_success(pool: WorkerPool) -> None:
    result = await run_script(pool, "auth.authenticationSuccess()", mode=RunMode.AUTH)
    assert result.status is RunStatus.SUCCESS
    assert result.auth == AuthOutcome(success=True, message=None)
    assert result.error is None


async def test_authentication_failed_reports_failed_with_the_message(pool: WorkerPool) -> None:
    result = await run_script(
        pool, "auth.authenticationFailed('Invalid API key')", mode=RunMode.AUTH
    )
    assert result.status is RunStatus.FAILED
    assert result.auth == AuthOutcome(success=False, message="Invalid API key")


async def test_the_first_auth_report_decides(pool: WorkerPool) -> None:
    success_first = await run_script(
        pool,
        "auth.authenticationSuccess(); auth.authenticationFailed('late')",
        mode=RunMode.AUTH,
    )
    assert success_first.status is RunStatus.SUCCESS
    assert success_first.auth == AuthOutcome(success=True, message=None)
    failed_first = await run_script(
        pool,
        "auth.authenticationFailed('early'); auth.authenticationSuccess()",
        mode=RunMode.AUTH,
    )
    assert failed_first.status is RunStatus.FAILED
    assert failed_first.auth == AuthOutcome(success=False, message="early")


async def test_an_auth_script_that_reports_nothing_is_an_error(pool: WorkerPool) -> None:
    result = await run_script(pool, "DOMO.log('checked nothing')", mode=RunMode.AUTH)
    assert result.status is RunStatus.ERROR
    assert result.auth is None
    assert result.error is not None
    assert result.error.code == ErrorCode.AUTH_NOT_REPORTED
    assert "authenticationSuccess" in result.error.message


async def test_a_process_run_has_no_auth_outcome(pool: WorkerPool) -> None:
    result = await run_script(pool, "auth.authenticationSuccess()", mode=RunMode.PROCESS)
    assert result.status is RunStatus.SUCCESS
    assert result.auth is None


# --- discovery ----------------------------------------------------------------------------

DISCOVERY_SCRIPT = """
    discovery.addOption('eu-1', 'Europe');
    discovery.addOption('us-2');
    const folder = discovery.addNode(discovery.tree, 'Sales');
    discovery.addLeaf(folder, 'Q1');
    discovery.addLeaf(discovery.tree, 'Top');
    discovery.publishTree();
"""


async def test_discovery_publishes_options_and_tree(pool: WorkerPool) -> None:
    result = await run_script(pool, DISCOVERY_SCRIPT, mode=RunMode.DISCOVERY)
    _assert_success(result)
    assert result.discovery is not None
    assert result.discovery.options == [
        DiscoveryOption(value="eu-1", label="Europe"),
        DiscoveryOption(value="us-2", label="us-2"),
    ]
    assert result.discovery.tree == {
        "name": "root",
        "children": [
            {"name": "Sales", "children": [{"name": "Q1", "leaf": True}]},
            {"name": "Top", "leaf": True},
        ],
    }


async def test_runs_in_other_modes_have_no_discovery(pool: WorkerPool) -> None:
    for mode in (RunMode.PROCESS, RunMode.AUTH):
        script = DISCOVERY_SCRIPT + "auth.authenticationSuccess();"
        result = await run_script(pool, script, mode=mode)
        _assert_success(result)
        assert result.discovery is None, mode


# --- metadata -----------------------------------------------------------------------------

METADATA_SCRIPT = """
    DOMO.log(JSON.stringify([metadata.account, metadata.parameters, metadata.report,
                             metadata.days, metadata.lastRunDate]));
"""


async def test_metadata_shows_account_parameters_and_report(pool: WorkerPool) -> None:
    account = {"username": "ann", "password": "pw-1", "apikey": "ak", "region": "eu"}
    parameters = {"Stage": "Won", "ids": ["a", "b"], "limit": 10}
    logged = await _logged_json(
        pool, METADATA_SCRIPT, account=account, parameters=parameters, report="Deals"
    )
    assert logged == [account, parameters, "Deals", 1, None]


async def test_metadata_shows_days_and_last_run_date(pool: WorkerPool) -> None:
    request = RunRequest(
        script=METADATA_SCRIPT,
        metadata=Metadata(days=7, last_run_date="2024-02-03T04:05:06Z"),
        limits=Limits(wall_time_s=5),
    )
    result = await pool.run(request, Host())
    _assert_success(result)
    assert json.loads(result.logs[0]) == [{}, {}, None, 7, "2024-02-03T04:05:06Z"]


# --- errors -------------------------------------------------------------------------------


async def test_a_syntax_error_names_its_line_and_runs_nothing(pool: WorkerPool) -> None:
    script = "DOMO.log('one');\nconst ok = 1;\nconst broken = ;\nDOMO.log('four');\n"
    result = await run_script(pool, script)
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert (result.error.code, result.error.line) == (ErrorCode.SYNTAX_ERROR, 3)
    assert result.error.message.startswith("SyntaxError: ")
    assert result.logs == []


async def test_a_runtime_exception_names_its_line_and_the_type_error(pool: WorkerPool) -> None:
    result = await run_script(pool, "DOMO.log('before');\nnull.x;\nDOMO.log('after');")
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert (result.error.code, result.error.line) == (ErrorCode.SCRIPT_EXCEPTION, 2)
    assert result.error.message == "TypeError: cannot read property 'x' of null"
    assert result.logs == ["before"]


async def test_json_parse_failing_at_run_time_is_a_script_exception(pool: WorkerPool) -> None:
    result = await run_script(pool, "DOMO.log('parsing');\nJSON.parse('{');\n")
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert (result.error.code, result.error.line) == (ErrorCode.SCRIPT_EXCEPTION, 2)
    assert result.error.message.startswith("SyntaxError: ")
    assert result.logs == ["parsing"]


async def test_throwing_a_string_is_a_script_exception_with_that_text(pool: WorkerPool) -> None:
    result = await run_script(pool, "DOMO.log('x');\nthrow 'Quota exceeded for today';")
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert result.error.code == ErrorCode.SCRIPT_EXCEPTION
    assert result.error.message == "uncaught Quota exceeded for today"


async def test_host_call_errors_are_ordinary_javascript_errors(
    pool: WorkerPool, egress: EgressClient, upstream: Upstream
) -> None:
    script = f"""
        const attempts = [
            () => httprequest.get({_js(upstream.url("/x"))}),
            () => DOMO.getState('k'),
            () => DOMO.parseXML('<open>'),
            () => {{ DOMO.jwtBuilder.authKey = null; return DOMO.getJWT(); }},
        ];
        const out = [];
        for (const attempt of attempts) {{
            try {{ attempt(); out.push('no error'); }}
            catch (e) {{ out.push([e instanceof Error, e.name, e.message]); }}
        }}
        DOMO.log(JSON.stringify(out));
    """
    # No state store: state calls fail; allowed hosts exclude the upstream.
    host = Host(http=egress.session(REFUSING_HOSTS))
    out = await _logged_json(pool, script, host=host)
    assert out[0] == [True, "Error", "host 127.0.0.1 is not in the connector's allowed_hosts"]
    assert out[1] == [True, "Error", "DOMO.getState/setState are not available here"]
    assert out[2][:2] == [True, "Error"]
    assert out[2][2].startswith("XML is not well-formed: ")
    assert out[3] == [True, "Error", "getJWT: DOMO.jwtBuilder.authKey is not set"]
