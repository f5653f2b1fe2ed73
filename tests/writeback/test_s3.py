"""`aws.createClient/put/get` (SPEC 3.2) against a local S3 server (moto's) on 127.0.0.1.

Requests are signed with botocore's SigV4 signer and sent through the real egress client,
so the connector's allowed hosts and the address policy apply; the secret key is a secret
of the run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from urllib.request import Request, urlopen

import pytest
from aiohttp import web
from defusedxml.ElementTree import fromstring
from pytest_aiohttp import AiohttpServer

from gateway.egress import EgressClient
from runtime.host import Host, HostCallError, ObjectRequest
from runtime.model import RunStatus
from runtime.pool import WorkerPool
from tests.conftest import run_script
from writeback.s3 import S3Objects, object_url

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
ACCESS = "AKIAIOSFODNN7EXAMPLE"
BUCKET = "writeback-files"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A moto S3 server on a free loopback port with one bucket; its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with urlopen(Request(f"{endpoint}/{BUCKET}", method="PUT")) as answer:  # noqa: S310
        assert answer.status == 200
    yield endpoint
    server.stop()


def _stored(endpoint: str) -> dict[str, int]:
    """The bucket's keys and sizes (moto lists a bucket without a signature)."""
    with urlopen(f"{endpoint}/{BUCKET}") as answer:  # noqa: S310
        listing = fromstring(answer.read())
    namespace = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    return {
        str(item.findtext(f"{namespace}Key")): int(item.findtext(f"{namespace}Size") or -1)
        for item in listing.iter(f"{namespace}Contents")
    }


def _script(endpoint: str, body: str) -> str:
    return (
        f"const client = aws.createClient('eu-west-1', {ACCESS!r}, {SECRET!r},"
        f" {{endpoint: {endpoint!r}}});\n{body}"
    )


async def _host(egress: EgressClient, hosts: tuple[str, ...] | None = None) -> Host:
    http = egress.session(hosts)
    return Host(http=http, aws=S3Objects(http))


async def test_put_then_get_round_trips_through_the_store(
    pool: WorkerPool, egress: EgressClient, s3: str
) -> None:
    script = _script(
        s3,
        """
        client.put('writeback-files/exports/2024', 'rows 1.json', {rows: [[1, 'Ann']]});
        DOMO.log(client.get('writeback-files/exports/2024', 'rows 1.json'));
        aws.put('writeback-files', 'plain.txt', 'héllo');
        DOMO.log(aws.get('writeback-files', 'plain.txt'));
        DOMO.log('the secret is ' + client.secret + ' / ' + '"""
        + SECRET
        + """');
        """,
    )
    result = await run_script(pool, script, host=await _host(egress))
    assert result.status is RunStatus.SUCCESS, result.error
    assert result.logs[:2] == ['{"rows":[[1,"Ann"]]}', "héllo"]
    assert _stored(s3)["exports/2024/rows 1.json"] == len('{"rows":[[1,"Ann"]]}')
    assert [(h.method, h.url.removeprefix(s3), h.status) for h in result.http] == [
        ("PUT", f"/{BUCKET}/exports/2024/rows%201.json", 200),
        ("GET", f"/{BUCKET}/exports/2024/rows%201.json", 200),
        ("PUT", f"/{BUCKET}/plain.txt", 200),
        ("GET", f"/{BUCKET}/plain.txt", 200),
    ]
    assert SECRET not in json.dumps(result.model_dump(mode="json"))
    assert result.logs[2] == "the secret is undefined / [redacted]"


async def test_store_errors_and_bad_names_are_clear_errors(
    pool: WorkerPool, egress: EgressClient, s3: str
) -> None:
    script = _script(
        s3,
        """
        for (const call of [
          () => client.get('writeback-files', 'missing.txt'),
          () => client.put('Not_A_Bucket', 'a.txt', 'x'),
          () => client.put('writeback-files', '', 'x'),
          () => aws.createClient('eu-west-1', 'k', 's', {endpoint: 'ftp://x'}).get('b-1', 'a'),
        ]) {
          try { call(); } catch (e) { DOMO.log(e.message); }
        }
        """,
    )
    result = await run_script(pool, script, host=await _host(egress))
    assert result.status is RunStatus.SUCCESS, result.error
    assert result.logs == [
        "aws.get: the store answered 404 (NoSuchKey: The specified key does not exist.)",
        "'Not_A_Bucket' is not an S3 bucket name",
        "the object needs a name",
        "the endpoint must be an http:// or https:// URL",
    ]


async def test_the_egress_policy_applies(pool: WorkerPool, egress: EgressClient, s3: str) -> None:
    script = _script(s3, "client.put('writeback-files', 'refused.txt', 'x');")
    result = await run_script(pool, script, host=await _host(egress, ("s3.example.com",)))
    assert result.error is not None
    assert result.error.code == "egress_refused"
    assert "refused.txt" not in _stored(s3)


async def test_requests_carry_a_sigv4_signature_over_the_payload(
    pool: WorkerPool, egress: EgressClient, aiohttp_server: AiohttpServer
) -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(text="stored")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app)
    endpoint = f"http://127.0.0.1:{server.port}"
    result = await run_script(
        pool,
        _script(endpoint, "client.put('writeback-files/p', 'a.csv', 'id\\n1\\n');"),
        host=await _host(egress),
    )
    assert result.status is RunStatus.SUCCESS, result.error
    [(headers, body)] = seen
    assert body == b"id\n1\n"
    assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(body).hexdigest()
    assert re.fullmatch(
        rf"AWS4-HMAC-SHA256 Credential={ACCESS}/\d{{8}}/eu-west-1/s3/aws4_request, "
        r"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}",
        headers["Authorization"],
    )


def test_amazon_s3_is_addressed_virtual_hosted_and_endpoints_path_style() -> None:
    request = ObjectRequest("GET", "eu-west-1", ACCESS, SECRET, "my-bucket/a/b/", "c d.txt")
    assert object_url(request) == "https://my-bucket.s3.eu-west-1.amazonaws.com/a/b/c%20d.txt"
    local = ObjectRequest("GET", "us-east-1", ACCESS, SECRET, "/b-1", "x", endpoint="http://h:9/")
    assert object_url(local) == "http://h:9/b-1/x"
    with pytest.raises(HostCallError, match="is not an AWS region"):
        object_url(ObjectRequest("GET", "eu/../west", ACCESS, SECRET, "b-1", "x"))


async def test_a_run_without_aws_gets_a_clear_error(pool: WorkerPool) -> None:
    result = await run_script(pool, "aws.createClient('r', 'k', 's').get('b', 'x');")
    assert result.error is not None
    assert result.error.message == "aws is not available to this run"
