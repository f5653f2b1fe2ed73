"""The scripts printed in the Domo documentation run unmodified against local fakes (SPEC 3.4)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.egress import AddressPolicy, EgressClient
from runtime.host import Host
from runtime.model import ErrorCode, RunMode, RunStatus
from runtime.pool import WorkerPool
from tests.conftest import run_script
from tests.domo_fakes import ACCESS_TOKEN, PASSWORD, SAMPLECRM, USERNAME, DomoHosts, Fakes

SCRIPTS = Path(__file__).parent.parent / "scripts"


@pytest.fixture
async def fake_hosts(domo_hosts: DomoHosts) -> AsyncIterator[tuple[Fakes, EgressClient]]:
    """The fakes and an egress client that reaches them through `connect_to` routes."""
    policy = AddressPolicy(
        allowed_networks=(domo_hosts.endpoint,), connect_to=domo_hosts.connect_to
    )
    async with EgressClient(policy, ca_file=str(domo_hosts.ca_file)) as client:
        yield domo_hosts.seen, client


def _script(name: str) -> str:
    """A script of `tests/scripts`, or of the Sample CRM example (`samplecrm/auth.js`)."""
    if name.startswith("samplecrm/"):
        return (SAMPLECRM / name.removeprefix("samplecrm/")).read_text()
    return (SCRIPTS / name).read_text()


def _host(client: EgressClient, *hosts: str) -> Host:
    return Host(http=client.session(hosts))


async def test_samplecrm_auth_succeeds_with_right_credentials(
    pool: WorkerPool, fake_hosts: tuple[Fakes, EgressClient]
) -> None:
    fakes, client = fake_hosts
    result = await run_script(
        pool,
        _script("samplecrm/auth.js"),
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
        _script("samplecrm/auth.js"),
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
        _script("samplecrm/process.js"),
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
        _script("samplecrm/process.js"),
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


@pytest.mark.parametrize(
    ("name", "status", "answer"),
    [
        (
            "Grand deal",
            RunStatus.SUCCESS,
            {
                "id": "006A",
                "name": "Grand deal",
                "account": "Grand Hotels",
                "stage": "Closed Won",
                "amount": 125000.5,
                "closeDate": "2017-01-05",
            },
        ),
        ("Lost deal", RunStatus.FAILED, None),
    ],
)
async def test_the_samplecrm_lookup_action_answers_the_opportunity_or_says_none_is_named(
    pool: WorkerPool,
    fake_hosts: tuple[Fakes, EgressClient],
    name: str,
    status: RunStatus,
    answer: dict[str, object] | None,
) -> None:
    """The README's action (`examples/samplecrm/lookup.js`): one cell, the opportunity."""
    fakes, client = fake_hosts
    result = await run_script(
        pool,
        _script("samplecrm/lookup.js"),
        host=_host(client, "developer.domo.com"),
        account={"username": USERNAME, "password": PASSWORD},
        parameters={"Opportunity Name": name},
    )
    assert result.status is status, result.error
    assert len(fakes.crm_requests) == 1
    if answer is None:
        assert result.error is not None
        assert (result.error.code, result.error.message) == (
            "not_found",
            'No opportunity is named "Lost deal"',
        )
        assert result.rows == []
    else:
        assert [c.name for c in result.columns] == ["opportunity"]
        assert [json.loads(cell) for (cell,) in result.rows] == [answer]


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
