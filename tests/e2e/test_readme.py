"""The README's walk-through, run verbatim with bash against the real `make run`.

The fenced `sh` blocks between the README's `walkthrough:start` and `walkthrough:end`
markers run in one bash process, in the repository, with every port and folder moved
(free ports on 127.0.0.1, a temporary data folder), so the README stays true.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

ROOT: Final = Path(__file__).parents[2]
START: Final = "<!-- walkthrough:start -->"
END: Final = "<!-- walkthrough:end -->"
MARK: Final = "::readme-block::"
PASSWORD: Final = "s3cret-crm-pass"
_FENCE: Final = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_RUN_S: Final = 240
_STOP_S: Final = 20


def walkthrough_blocks(readme: str) -> list[str]:
    """The shell blocks of the marked walk-through, in order."""
    section = readme[readme.index(START) : readme.index(END)]
    return _FENCE.findall(section)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _processes() -> dict[int, tuple[int, int]]:
    """Every process's (parent, process group), from /proc."""
    found: dict[int, tuple[int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        found[int(stat.parent.name)] = (int(fields[1]), int(fields[2]))
    return found


def _started_by(group: int) -> set[int]:
    """The processes of `group` and all their descendants (workers have sessions of their own)."""
    table = _processes()
    members = {pid for pid, (_, pgid) in table.items() if pgid == group}
    frontier = set(members)
    while frontier:
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - members
        members |= frontier
    return members


def _alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def _stop(group: int) -> set[int]:
    """SIGTERM everything the walk-through started, SIGKILL what is left; return survivors."""
    started = _started_by(group)
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_S
    while _alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in _alive(started):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    return {pid for pid in _alive(started) if _state(pid) != "Z"}


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _json_lines(text: str) -> Iterator[Any]:
    """Every line of `text` that is a JSON object or array."""
    for line in text.splitlines():
        if line.startswith(("{", "[")):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def _objects(text: str, *keys: str) -> list[dict[str, Any]]:
    """The JSON objects of `text` that have all these keys."""
    return [o for o in _json_lines(text) if isinstance(o, dict) and set(keys) <= set(o)]


def _opportunities(text: str) -> list[str]:
    """The names of the opportunities the action answered, in order."""
    return [o["name"] for o in _objects(text, "id", "name", "account", "stage", "amount")]


def _check_the_action(output: str) -> None:
    """Step 5: the action created, published as version 1 and called with an account id."""
    (created,) = _objects(output, "guid", "key", "kind")
    assert (created["kind"], created["key"]) == ("action", "samplecrm-deals")
    scripts = _objects(output, "kind", "sha256")
    assert [(s["kind"], s["syntax"]) for s in scripts] == [
        ("auth", {"ok": True}),
        ("process", {"ok": True}),
    ]
    (version,) = _objects(output, "number", "connector_guid")
    assert version["number"] == 1
    (listed,) = _objects(output, "items", "next_cursor")
    assert [(a["guid"], a["scope"], a["version"]) for a in listed["items"]] == [
        (created["guid"], "customer", 1)
    ]
    assert _opportunities(output) == ["Grand deal"] * 3
    assert _objects(output, "id", "stage")[0] == {
        "id": "006A",
        "name": "Grand deal",
        "account": "Grand Hotels",
        "stage": "Closed Won",
        "amount": 125000.5,
        "closeDate": "2017-01-05",
    }
    # The first call with the key ran; the retry got the stored answer.
    assert re.findall(r"^replayed: (.*)$", output, re.MULTILINE) == ["", "true"]


def _check_the_app(output: str) -> None:
    """Step 6: the app placed and mapped, its action called by a server and a browser."""
    (app,) = _objects(output, "manifest", "file_count")
    assert app["manifest"]["accountMapping"] == [
        {"alias": "deals", "dataProviderKey": "samplecrm-deals"}
    ]
    (instance,) = _objects(output, "app_id", "name")
    (mapping,) = _objects(output, "alias", "provider_key", "account_id")
    assert (mapping["alias"], mapping["provider_key"]) == ("deals", "samplecrm-deals")
    # With X-App-Instance, then in the browser's session on the instance's own origin.
    assert _opportunities(output) == ["Pyramid renewal", "Grand deal"]
    (launch,) = _objects(output, "url")
    assert f"/apps/{instance['id']}/?link=" in launch["url"]
    assert re.search(rf"^http://{instance['id']}\.apps\.localhost:\d+/$", output, re.MULTILINE)
    (sessions,) = _objects(output, "items", "next_cursor")
    assert len(sessions["items"]) == 1


@pytest.fixture
def walkthrough_output(tmp_path: Path) -> list[str]:
    """Run the walk-through; return each block's output (stdout and stderr)."""
    blocks = walkthrough_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    script = ["set -euo pipefail"]
    for block in blocks:
        script += [f"echo '{MARK}'", block]
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "GATEWAY_PORT": str(_free_port()),
        "CRM_PORT": str(_free_port()),
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_WORKERS": "1",
    }
    log = tmp_path / "output.txt"
    with log.open("wb") as out:
        bash = subprocess.Popen(
            ["/bin/bash", "-c", "\n".join(script)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: everything it starts goes with it
        )
        try:
            code = bash.wait(timeout=_RUN_S)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            survivors = _stop(bash.pid)
            bash.wait()
    text = log.read_text(encoding="utf-8", errors="replace")
    assert code == 0, f"the walk-through failed (exit {code}):\n{text[-4000:]}"
    assert survivors == set(), f"processes left running: {survivors}"
    return text.split(MARK + "\n")[1:]


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("make", "curl", "python3")),
    reason="the walk-through needs make, curl and python3",
)
@pytest.mark.timeout(_RUN_S + 3 * _STOP_S)
def test_the_readme_walkthrough_works_as_pasted(walkthrough_output: list[str]) -> None:
    start, users, connector, runs, action, app, script_run = walkthrough_output
    assert _objects(start, "status", "workers")[0]["status"] == "ready"
    assert "Sample CRM API: https://developer.domo.com/samplecrm" in start

    me, ann, token = (
        _objects(users, "role", "email")[0],
        _objects(users, "role", "email")[1],
        _objects(users, "token")[0],
    )
    assert (me["email"], me["role"]) == ("you@acme.example", "platform_admin")
    assert (ann["email"], ann["role"]) == ("ann@acme.example", "member")
    assert token["token"].startswith("gw_")
    listed = _objects(users, "items", "next_cursor")[0]["items"]
    assert {u["email"] for u in listed} == {"you@acme.example", "ann@acme.example"}
    # `gateway admin token` gave a new token that works: /me answered with it.
    assert _objects(users, "role", "email")[-1]["email"] == "you@acme.example"

    created = _objects(connector, "guid", "key")
    assert [c["key"] for c in created] == ["samplecrm"]
    scripts = _objects(connector, "kind", "sha256")
    assert [s["kind"] for s in scripts] == ["auth", "process"]
    assert all(s.get("syntax", {"ok": True}) == {"ok": True} for s in scripts)
    assert len(_objects(connector, "width", "height")) == 4

    auth_run, process_run = _objects(runs, "run_id", "status", "rows")
    assert auth_run["status"] == "success"
    assert "metadata.account.password: [redacted]" in auth_run["logs"]
    assert process_run["status"] == "success", process_run["error"]
    names = [c["name"] for c in process_run["columns"]]
    assert [dict(zip(names, row, strict=True))["Account.Name"] for row in process_run["rows"]] == [
        "Grand Hotels",
        "Pyramid Co",
    ]
    shared = _objects(runs, "items", "next_cursor")
    assert [a["name"] for a in shared[0]["items"]] == ["My CRM"]  # what Ann sees
    assert len(shared[1]["items"]) >= 2  # the runs of the connector

    _check_the_action(action)
    _check_the_app(app)

    assert _objects(script_run, "status", "auth")[0]["auth"] == {"success": True, "message": None}
    assert "Grand Hotels" in script_run
    assert "(2 rows)" in script_run
    assert "status: success" in script_run

    assert PASSWORD not in "".join(walkthrough_output)
