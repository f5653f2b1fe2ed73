"""`gateway script run`, driven through the real entry point in a subprocess."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.identity.principal import Role
from gateway.identity.service import IdentityService
from gateway.store.engine import create_engine, database_url_for
from tests.domo_fakes import ACCESS_TOKEN, PASSWORD, SAMPLECRM, USERNAME, DomoHosts

SCRIPTS = Path(__file__).parent.parent / "scripts"
RESULT_KEYS = {
    "status",
    "auth",
    "columns",
    "rows",
    "logs",
    "http",
    "error",
    "discovery",
    "duration_ms",
}


@dataclass(frozen=True)
class Completed:
    """What the command did."""

    code: int
    stdout: str
    stderr: str

    def document(self) -> dict[str, Any]:
        """The one JSON object `--format json` prints."""
        lines = self.stdout.strip().splitlines()
        assert len(lines) == 1, self.stdout
        value = json.loads(lines[0])
        assert isinstance(value, dict)
        return value


async def gateway(*args: str, env: dict[str, str] | None = None) -> Completed:
    """Run `python -m gateway ARGS` without blocking the fakes' event loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Completed(process.returncode, stdout.decode(), stderr.decode())


def _reach(domo_hosts: DomoHosts) -> tuple[list[str], dict[str, str]]:
    """Flags and settings that route the documentation's hosts to the local fakes."""
    flags = ["--allow-network", domo_hosts.endpoint]
    for entry in domo_hosts.connect_to:
        flags += ["--connect-to", entry]
    return flags, {"GATEWAY_EGRESS_CA_FILE": str(domo_hosts.ca_file)}


async def test_auth_script_succeeds_as_json(domo_hosts: DomoHosts) -> None:
    flags, env = _reach(domo_hosts)
    account = json.dumps({"username": USERNAME, "password": PASSWORD})
    done = await gateway(
        "script",
        "run",
        str(SAMPLECRM / "auth.js"),
        "--mode",
        "auth",
        "--account",
        account,
        "--format",
        "json",
        "--allow-host",
        "developer.domo.com",
        *flags,
        env=env,
    )
    assert done.code == 0, done.stderr
    document = done.document()
    assert set(document) == RESULT_KEYS
    assert document["status"] == "success"
    assert document["auth"] == {"success": True, "message": None}
    assert document["error"] is None
    assert document["http"][0]["url"] == "https://developer.domo.com/samplecrm"
    assert PASSWORD not in done.stdout
    assert "metadata.account.password: [redacted]" in document["logs"]


async def test_failed_auth_exits_1(domo_hosts: DomoHosts, tmp_path: Path) -> None:
    flags, env = _reach(domo_hosts)
    account_file = tmp_path / "account.json"
    account_file.write_text(json.dumps({"username": USERNAME, "password": "nope-nope"}))
    done = await gateway(
        "script",
        "run",
        str(SAMPLECRM / "auth.js"),
        "--mode",
        "auth",
        "--account",
        f"@{account_file}",
        "--format",
        "json",
        *flags,
        env=env,
    )
    assert done.code == 1
    assert done.document()["auth"] == {
        "success": False,
        "message": "Your username and password are incorrect.",
    }


async def test_process_script_prints_a_table(domo_hosts: DomoHosts) -> None:
    # The settings this time, as the README's walk-through sets them.
    env = {
        "GATEWAY_EGRESS_CONNECT_TO": ",".join(domo_hosts.connect_to),
        "GATEWAY_EGRESS_ALLOWED_NETWORKS": domo_hosts.endpoint,
        "GATEWAY_EGRESS_CA_FILE": str(domo_hosts.ca_file),
    }
    account = json.dumps({"username": USERNAME, "password": PASSWORD})
    done = await gateway(
        "script",
        "run",
        str(SAMPLECRM / "process.js"),
        "--report",
        "Opportunities",
        "--account",
        account,
        env=env,
    )
    assert done.code == 0, done.stdout + done.stderr
    assert "Account.Id | Account.Industry" in done.stdout
    assert "Grand Hotels" in done.stdout
    assert "(2 rows)" in done.stdout
    assert "status: success" in done.stdout


async def test_printed_salesforce_action_exits_1_with_the_line(domo_hosts: DomoHosts) -> None:
    flags, env = _reach(domo_hosts)
    done = await gateway(
        "script",
        "run",
        str(SCRIPTS / "salesforce_stage_printed.js"),
        "--account",
        json.dumps({"accesstoken": ACCESS_TOKEN}),
        "--format",
        "json",
        *flags,
        env=env,
    )
    assert done.code == 1
    error = done.document()["error"]
    assert (error["code"], error["line"]) == ("syntax_error", 1)
    assert domo_hosts.seen.salesforce == []


async def test_salesforce_action_with_parameters_file(
    domo_hosts: DomoHosts, tmp_path: Path
) -> None:
    flags, env = _reach(domo_hosts)
    parameters = tmp_path / "parameters.json"
    parameters.write_text(json.dumps({"Opportunity ID": "006X", "Stage Name": "Won"}))
    done = await gateway(
        "script",
        "run",
        str(SCRIPTS / "salesforce_stage.js"),
        "--account",
        json.dumps({"accesstoken": ACCESS_TOKEN}),
        "--parameters",
        f"@{parameters}",
        "--format",
        "json",
        *flags,
        env=env,
    )
    assert done.code == 0, done.stderr
    assert done.document()["rows"] == [['{"status":204}']]


async def test_state_file_persists_between_runs(tmp_path: Path) -> None:
    script = tmp_path / "count.js"
    script.write_text(
        "var n = (DOMO.getState('runs') || 0) + 1; DOMO.setState('runs', n); DOMO.log(n);"
    )
    state = tmp_path / "state.json"
    for expected in ("1", "2"):
        done = await gateway(
            "script", "run", str(script), "--state", str(state), "--format", "json"
        )
        assert done.code == 0, done.stderr
        assert done.document()["logs"] == [expected]
    assert json.loads(state.read_text()) == {"runs": 2}


async def test_timeout_exits_1(tmp_path: Path) -> None:
    script = tmp_path / "spin.js"
    script.write_text("while (true) {}")
    done = await gateway("script", "run", str(script), "--timeout", "0.5", "--format", "json")
    assert done.code == 1
    assert done.document()["status"] == "timeout"


async def test_refused_host_exits_1(tmp_path: Path) -> None:
    script = tmp_path / "exfiltrate.js"
    script.write_text("httprequest.get('http://127.0.0.1:9/steal')")
    done = await gateway(
        "script", "run", str(script), "--format", "json", "--allow-host", "api.example.com"
    )
    assert done.code == 1
    error = done.document()["error"]
    assert error["code"] == "egress_refused"
    assert error["message"] == "host 127.0.0.1 is not allowed (add --allow-host 127.0.0.1)"


async def test_refused_address_names_the_flags_that_allow_it(tmp_path: Path) -> None:
    script = tmp_path / "local.js"
    script.write_text("httprequest.get('http://127.0.0.1:9/steal')")
    done = await gateway("script", "run", str(script), "--format", "json")
    assert done.code == 1
    error = done.document()["error"]
    assert error["code"] == "egress_refused"
    assert error["message"].endswith(
        "address 127.0.0.1 is loopback "
        "(add --allow-private-network, or --allow-network 127.0.0.1:9)"
    )
    assert "allowed_hosts" not in error["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account", "{not json"], "--account: not valid JSON"),
        (["--account", "[1, 2]"], "--account: must be a JSON object"),
        (["--parameters", "@/nonexistent/params.json"], "--parameters: cannot read"),
        (["--timeout", "0"], "--timeout must be between"),
        (["--resolve", "nonsense"], "resolve"),
        (["--connect-to", "developer.domo.com:443"], "connect-to entry 'developer.domo.com:443'"),
    ],
)
async def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    script = tmp_path / "ok.js"
    script.write_text("DOMO.log('ok')")
    done = await gateway("script", "run", str(script), *args)
    assert done.code == 2
    assert message in done.stderr
    assert done.stdout == ""


async def test_missing_script_and_unknown_flag_exit_2(tmp_path: Path) -> None:
    missing = await gateway("script", "run", str(tmp_path / "absent.js"))
    assert missing.code == 2
    assert "cannot read" in missing.stderr
    unknown = await gateway("script", "run", str(tmp_path / "absent.js"), "--bogus")
    assert unknown.code == 2


async def test_bad_setting_names_the_variable(tmp_path: Path) -> None:
    script = tmp_path / "ok.js"
    script.write_text("DOMO.log('ok')")
    done = await gateway("script", "run", str(script), env={"GATEWAY_WORKERS": "many"})
    assert done.code == 2
    assert "GATEWAY_WORKERS" in done.stderr


async def test_admin_bootstrap_prints_a_working_token_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = await gateway(
        "admin",
        "bootstrap",
        "--customer",
        "acme",
        "--email",
        "Root@Acme.test",
        "--data-dir",
        str(data),
    )
    assert first.code == 0, first.stderr
    token = first.stdout.strip().splitlines()[-1]
    assert token.startswith("gw_")
    assert "root@acme.test" in first.stderr
    second = await gateway(
        "admin",
        "bootstrap",
        "--customer",
        "other",
        "--email",
        "x@other.test",
        "--data-dir",
        str(data),
    )
    assert second.code == 1
    assert "bootstrapped already" in second.stderr
    assert second.stdout == ""
    engine = create_engine(database_url_for(None, data))
    try:
        principal = await IdentityService(engine).authenticate(token)
    finally:
        await engine.dispose()
    assert principal is not None
    assert principal.role is Role.PLATFORM_ADMIN


# --- THREATS R12: forged worker messages -------------------------------------------------

# Runs `python -m gateway ARGS` and then prints the peak RSS of it and its workers (KiB): the
# largest of its waited-for descendants, measured in a process of its own.
_PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run([sys.executable, '-m', 'gateway', *sys.argv[1:]])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(done.returncode)\n"
)
PEAK_RSS_MB = 600
"""Generous: the forged run of issue 10 peaked at 5 GB; a clean one stays near 100 MB."""

R12_FORGERIES = {
    "object_to_json": "Object.prototype.toJSON = () => ({t: 'log', line: 'x'.repeat(8e6)});",
    "replaced_stringify": (
        'JSON.stringify = () => \'{"t":"log","line":"\' + \'x\'.repeat(8e6) + \'"}\';'
    ),
    "getter": (
        "Object.defineProperty(Object.prototype, 'toJSON', "
        "{get() { return () => ({t: 'log', line: 'x'.repeat(8e6)}); }});"
    ),
}


@pytest.mark.parametrize("forgery", R12_FORGERIES.values(), ids=R12_FORGERIES.keys())
async def test_r12_forged_log_frames_stay_within_the_log_cap(tmp_path: Path, forgery: str) -> None:
    script = tmp_path / "forge.js"
    script.write_text(
        forgery + "\ndatagrid.addColumn('n');\n"
        "for (let i = 0; i < 40000; i++) { datagrid.addCell('v' + i); datagrid.endRow(); }\n"
        "DOMO.log('done');\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PEAK_RSS,
        "script",
        "run",
        str(script),
        "--format",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    done = Completed(process.returncode or 0, stdout.decode(), stderr.decode())
    document = done.document()
    assert document["status"] == "success", document["error"]
    assert document["logs"] == ["done"]
    assert len(document["rows"]) == 40000
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    assert peak_kib < PEAK_RSS_MB * 1024
