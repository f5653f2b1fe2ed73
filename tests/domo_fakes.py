"""Local HTTPS fakes of the hosts the documentation's scripts call."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

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


@dataclass(frozen=True)
class DomoHosts:
    """The running fakes, what they saw, and how to reach them."""

    seen: Fakes
    ca_file: Path
    resolve: tuple[str, ...]


@pytest.fixture
async def domo_hosts(tmp_path: Path) -> AsyncIterator[DomoHosts]:
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
    resolve = (
        f"developer.domo.com:443:{FAKE_ADDRESS}",
        f"na73.salesforce.com:443:{FAKE_ADDRESS}",
    )
    yield DomoHosts(fakes, ca.ca_file, resolve)
    await runner.cleanup()
