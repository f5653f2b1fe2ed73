"""The scripts printed in the Domo documentation run unmodified against local fakes (SPEC 3.4)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from gateway.egress import AddressPolicy, EgressClient
from runtime.host import Host
from runtime.model import ErrorCode, RunMode, RunStatus
from runtime.pool import WorkerPool
from tests.conftest import run_script
from tests.tls import make_test_ca

SCRIPTS = Path(__file__).parent.parent / "scripts"
# Port 443 on a loopback address of our own, so the scripts' https URLs stay unchanged.
FAKE_ADDRESS = "127.43.0.1"
USERNAME, PASSWORD = "crm-user", "s3cret-crm-pass"
ACCESS_TOKEN = "00Dxx0000001gPL!AQ4AQFakeSalesforceToken"

CSV_HEADER = (
    "Account.Id,Account.Industry,Account.Name,Amount,CloseDate,CreatedDate,Id,IsClosed,IsWon,"
    "LastActivityDate,LastModifiedDate,LeadSource,Name,NextStep,Probability,StageName,Type,"
    "ForecastCategoryName,Strategic_Account__c,Forecasted_ACV__c,Competitor__c,"
    "Owner.CreatedDate,Owner.Email,Owner.FullPhotoUrl,Owner.Id,Owner.IsActive,Owner.Manager,"
    "Owner.Name,Owner.UserRole.Name"
)
CSV_ROWS = [
    "001A,Energy,Grand Hotels,125000.5,2017-01-05,2016-11-02T10:15:00,006A,true,true,"
    "2017-01-04,2017-01-06T08:00:00,Web,Grand deal,Sign,90,Closed Won,New Customer,Closed,"
    "yes,130000,None,2015-03-01T09:00:00,ann@crm.test,http://crm.test/p/1,005A,true,"
    "005Z,Ann Lee,Sales",
    "001B,Media,Pyramid Co,42000,2017-02-10,2016-12-12T16:45:30,006B,false,false,"
    "2017-02-01,2017-02-09T12:30:00,Phone,Pyramid renewal,Call,40,Prospecting,Existing,"
    "Pipeline,no,45000,Acme,2015-04-02T10:00:00,bob@crm.test,http://crm.test/p/2,005B,true,"
    "005Z,Bob Stone,Sales",
]


@dataclass
class Fakes:
    """What the fake hosts saw."""

    crm_requests: list[str] = field(default_factory=list)
    salesforce: list[dict[str, object]] = field(default_factory=list)


FAKES = web.AppKey("fakes", Fakes)


async def _samplecrm(request: web.Request) -> web.Response:
    fakes = request.app[FAKES]
    fakes.crm_requests.append(request.headers.get("Authorization", ""))
    expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    if request.headers.get("Authorization") != expected:
        return web.Response(status=401, text="unauthorized")
    return web.Response(text="\r".join([CSV_HEADER, *CSV_ROWS]), content_type="text/csv")


async def _salesforce(request: web.Request) -> web.Response:
    fakes = request.app[FAKES]
    fakes.salesforce.append(
        {
            "path": request.path,
            "query": dict(request.query),
            "authorization": request.headers.get("Authorization"),
            "body": await request.json(),
        }
    )
    return web.Response(status=204)


@pytest.fixture
async def fake_hosts(tmp_path: Path) -> AsyncIterator[tuple[Fakes, EgressClient]]:
    """developer.domo.com and na73.salesforce.com on 127.43.0.1:443 with a test CA."""
    ca = make_test_ca(tmp_path, ["developer.domo.com", "na73.salesforce.com"])
    fakes = Fakes()
    app = web.Application()
    app[FAKES] = fakes
    app.router.add_get("/samplecrm", _samplecrm)
    app.router.add_post("/services/data/v22.0/sobjects/Opportunity/{id}", _salesforce)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, FAKE_ADDRESS, 443, ssl_context=ca.server_context)
    await site.start()
    policy = AddressPolicy(
        allow_private=True,
        resolve=(
            f"developer.domo.com:443:{FAKE_ADDRESS}",
            f"na73.salesforce.com:443:{FAKE_ADDRESS}",
        ),
    )
    client = EgressClient(policy, ca_file=str(ca.ca_file))
    yield fakes, client
    await client.close()
    await runner.cleanup()


def _script(name: str) -> str:
    return (SCRIPTS / name).read_text()


def _host(client: EgressClient, *hosts: str) -> Host:
    return Host(http=client.session(hosts))


async def test_samplecrm_auth_succeeds_with_right_credentials(
    pool: WorkerPool, fake_hosts: tuple[Fakes, EgressClient]
) -> None:
    fakes, client = fake_hosts
    result = await run_script(
        pool,
        _script("samplecrm_auth.js"),
        host=_host(client, "developer.domo.com"),
        mode=RunMode.AUTH,
        account={"username": USERNAME, "password": PASSWORD},
        secrets=(PASSWORD,),
    )
    assert result.status is RunStatus.SUCCESS
    assert result.auth is not None
    assert result.auth.success
    assert len(fakes.crm_requests) == 1
    # The script logs the password itself; the run keeps it redacted.
    assert result.logs == [
        f"metadata.account.username: {USERNAME}",
        "metadata.account.password: [redacted]",
    ]
    assert [(h.method, h.url, h.status) for h in result.http] == [
        ("GET", "https://developer.domo.com/samplecrm", 200)
    ]


async def test_samplecrm_auth_fails_with_the_scripts_message(
    pool: WorkerPool, fake_hosts: tuple[Fakes, EgressClient]
) -> None:
    _, client = fake_hosts
    result = await run_script(
        pool,
        _script("samplecrm_auth.js"),
        host=_host(client, "developer.domo.com"),
        mode=RunMode.AUTH,
        account={"username": USERNAME, "password": "wrong-password"},
    )
    assert result.status is RunStatus.FAILED
    assert result.auth is not None
    assert result.auth.message == "Your username and password are incorrect."


async def test_action_docs_auth_script_with_indexof(
    pool: WorkerPool, fake_hosts: tuple[Fakes, EgressClient]
) -> None:
    _, client = fake_hosts
    result = await run_script(
        pool,
        _script("samplecrm_auth_indexof.js"),
        host=_host(client, "developer.domo.com"),
        mode=RunMode.AUTH,
        account={"username": USERNAME, "password": PASSWORD},
    )
    assert result.status is RunStatus.SUCCESS


async def test_samplecrm_process_builds_the_grid(
    pool: WorkerPool, fake_hosts: tuple[Fakes, EgressClient]
) -> None:
    _, client = fake_hosts
    result = await run_script(
        pool,
        _script("samplecrm_process.js"),
        host=_host(client, "developer.domo.com"),
        account={"username": USERNAME, "password": PASSWORD},
        report="Opportunities",
    )
    assert result.status is RunStatus.SUCCESS, result.error
    assert len(result.columns) == 29
    types = {c.name: c.type.value for c in result.columns}
    assert types["Amount"] == "DOUBLE"
    assert types["CloseDate"] == "DATETIME"
    assert len(result.rows) == 2
    first = dict(zip([c.name for c in result.columns], result.rows[0], strict=True))
    assert first["Account.Name"] == "Grand Hotels"
    assert first["Amount"] == 125000.5
    assert first["CloseDate"] == "2017-01-05T00:00:00"
    assert first["LastActivityDate"] == "2017-01-04T00:00:00"
    assert first["Owner.UserRole.Name"] == "Sales"


async def test_samplecrm_process_unsupported_report_fails_with_its_message(
    pool: WorkerPool, fake_hosts: tuple[Fakes, EgressClient]
) -> None:
    _, client = fake_hosts
    result = await run_script(
        pool,
        _script("samplecrm_process.js"),
        host=_host(client, "developer.domo.com"),
        account={"username": USERNAME, "password": PASSWORD},
        report="Leads",
    )
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.code == 0
    assert result.error.message == "Leads is not a supported report."


async def test_printed_samplecrm_process_names_the_first_bad_cell(
    pool: WorkerPool, fake_hosts: tuple[Fakes, EgressClient]
) -> None:
    _, client = fake_hosts
    result = await run_script(
        pool,
        _script("samplecrm_process_printed.js"),
        host=_host(client, "developer.domo.com"),
        account={"username": USERNAME, "password": PASSWORD},
        report="Opportunities",
    )
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert result.error.code == ErrorCode.BAD_CELL
    assert result.error.message.startswith("row 1, column '")
    assert result.rows == []


async def test_salesforce_stage_action(
    pool: WorkerPool, fake_hosts: tuple[Fakes, EgressClient]
) -> None:
    fakes, client = fake_hosts
    result = await run_script(
        pool,
        _script("salesforce_stage.js"),
        host=_host(client, "na73.salesforce.com"),
        account={"accesstoken": ACCESS_TOKEN},
        parameters={"Opportunity ID": "0061a00000ABCDE", "Stage Name": "Closed Won"},
        secrets=(ACCESS_TOKEN,),
    )
    assert result.status is RunStatus.SUCCESS, result.error
    assert result.columns[0].name == "Response"
    assert result.rows == [['{"status":204}']]
    assert fakes.salesforce == [
        {
            "path": "/services/data/v22.0/sobjects/Opportunity/0061a00000ABCDE",
            "query": {"_HttpMethod": "PATCH"},
            "authorization": f"Bearer {ACCESS_TOKEN}",
            "body": {"StageName": "Closed Won"},
        }
    ]


async def test_printed_salesforce_action_is_a_syntax_error_before_any_request(
    pool: WorkerPool, fake_hosts: tuple[Fakes, EgressClient]
) -> None:
    fakes, client = fake_hosts
    result = await run_script(
        pool,
        _script("salesforce_stage_printed.js"),
        host=_host(client, "na73.salesforce.com"),
        account={"accesstoken": ACCESS_TOKEN},
        parameters={"Opportunity ID": "0061a00000ABCDE", "Stage Name": "Closed Won"},
    )
    assert result.status is RunStatus.ERROR
    assert result.error is not None
    assert (result.error.code, result.error.line) == (ErrorCode.SYNTAX_ERROR, 1)
    assert fakes.salesforce == []
