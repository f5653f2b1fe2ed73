"""THREATS S1: every string a run returns is scrubbed of its secrets, in one place."""

from __future__ import annotations

from runtime.model import (
    AuthOutcome,
    Column,
    ColumnType,
    Discovery,
    DiscoveryOption,
    HttpTraceEntry,
    RunError,
    RunMode,
    RunResult,
    RunStatus,
)
from runtime.pool import WorkerPool
from runtime.redact import Redactor
from tests.conftest import run_script

SECRET = "hunter2-Zq9"


def test_result_scrubs_every_string_field() -> None:
    s = SECRET
    result = RunResult(
        status=RunStatus.FAILED,
        auth=AuthOutcome(success=False, message=f"bad {s}"),
        columns=[Column(name=f"col_{s}", type=ColumnType.STRING)],
        rows=[[f"cell {s}", 1, None]],
        logs=[f"log {s}"],
        http=[
            HttpTraceEntry(
                method="GET",
                url=f"https://x.test/?k={s}",
                status=None,
                duration_ms=1.0,
                error=f"refused {s}",
            )
        ],
        error=RunError(code=f"code_{s}", message=f"message {s}", line=3),
        discovery=Discovery(
            options=[DiscoveryOption(value=s, label=f"label {s}")],
            tree={"name": "root", "children": [{"name": f"node {s}", "leaf": True}]},
        ),
    )
    scrubbed = Redactor([s]).result(result)
    assert s not in scrubbed.model_dump_json()
    assert scrubbed.columns[0].name == "col_[redacted]"
    assert scrubbed.error == RunError(code="code_[redacted]", message="message [redacted]", line=3)
    assert scrubbed.discovery is not None
    assert scrubbed.discovery.tree["children"][0]["name"] == "node [redacted]"
    assert (scrubbed.status, scrubbed.rows[0][1:]) == (RunStatus.FAILED, [1, None])


def test_result_without_secrets_is_unchanged() -> None:
    result = RunResult(status=RunStatus.SUCCESS, logs=["hello"])
    assert Redactor([]).result(result) is result


def test_an_integer_error_code_is_kept() -> None:
    result = RunResult(status=RunStatus.FAILED, error=RunError(code=4321, message="m"))
    assert Redactor(["4321"]).result(result).error == RunError(code=4321, message="m")


async def test_a_run_never_returns_its_secrets(pool: WorkerPool) -> None:
    account = {"password": SECRET}
    process = await run_script(
        pool,
        "datagrid.addColumn('col_' + metadata.account.password);"
        "datagrid.addCell(metadata.account.password); datagrid.endRow();",
        account=account,
        secrets=(SECRET,),
    )
    failed = await run_script(
        pool,
        "datagrid.error('code_' + metadata.account.password, 'no');",
        account=account,
        secrets=(SECRET,),
    )
    auth = await run_script(
        pool,
        "auth.authenticationFailed('wrong ' + metadata.account.password);",
        mode=RunMode.AUTH,
        account=account,
        secrets=(SECRET,),
    )
    discovery = await run_script(
        pool,
        "const pw = metadata.account.password; discovery.addOption(pw, pw);"
        "discovery.addLeaf(discovery.addNode(discovery.tree, pw), pw);",
        mode=RunMode.DISCOVERY,
        account=account,
        secrets=(SECRET,),
    )
    for result in (process, failed, auth, discovery):
        assert SECRET not in result.model_dump_json()
    assert [c.name for c in process.columns] == ["col_[redacted]"]
    assert failed.error is not None
    assert failed.error.code == "code_[redacted]"
    assert auth.auth == AuthOutcome(success=False, message="wrong [redacted]")
