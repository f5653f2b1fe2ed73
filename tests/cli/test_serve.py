"""`gateway serve` as operators run it: clean shutdown, the container's health check."""

from __future__ import annotations

import asyncio
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp

from tests.cli.served import Served, serve
from tests.cli.test_script_run import gateway

DOCKERFILE = Path(__file__).parent.parent.parent / "Dockerfile"
PROCESS_SCRIPT = """
datagrid.addColumn('greeting', datagrid.DATA_TYPE_STRING);
datagrid.addCell('hello ' + metadata.report);
datagrid.endRow();
"""


async def _bootstrap(data_dir: Path) -> dict[str, str]:
    done = await gateway(
        "admin", "bootstrap", "--customer", "acme", "--email", "root@acme.test",
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert done.code == 0, done.stderr
    return {"Authorization": f"Bearer {done.stdout.splitlines()[-1]}"}


async def _use(served: Served, headers: dict[str, str]) -> dict[str, Any]:
    """A few requests, one of which runs a script on a worker."""
    async with aiohttp.ClientSession(served.url, headers=headers) as session:
        async with session.get("/api/v1/me") as response:
            assert response.status == HTTPStatus.OK
        body = {
            "kind": "connector",
            "name": "Greeter",
            "key": "greeter",
            "description": "says hello",
            "auth": {"method": "none"},
            "allowed_hosts": [],
            "parameters": [],
            "reports": ["Everyone"],
        }
        async with session.post("/api/v1/connectors", json=body) as response:
            assert response.status == HTTPStatus.CREATED, await response.text()
            guid = (await response.json())["guid"]
        async with session.put(
            f"/api/v1/connectors/{guid}/scripts/process",
            data=PROCESS_SCRIPT.encode(),
            headers={"Content-Type": "application/javascript"},
        ) as response:
            assert response.status == HTTPStatus.OK, await response.text()
        async with session.post(
            f"/api/v1/connectors/{guid}/runs", json={"report": "Everyone"}
        ) as response:
            assert response.status == HTTPStatus.OK, await response.text()
            result: dict[str, Any] = await response.json()
    return result


async def test_sigterm_shuts_down_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    headers = await _bootstrap(data_dir)
    async with serve(data_dir) as served:
        result = await _use(served, headers)
        assert result["rows"] == [["hello Everyone"]]
        assert await served.stop() == 0
    text = "\n".join(served.lines)
    assert "Traceback" not in text
    records = served.records()
    assert any(record["event"] == "gateway_starting" for record in records)
    loud = [r for r in records if r.get("level") in ("error", "critical") or "exception" in r]
    assert loud == []
    # Every line is a structured log line: nothing was printed around the logger.
    assert len(records) == len([line for line in served.lines if line.strip()]), text


async def test_the_container_health_check_asks_the_configured_port(tmp_path: Path) -> None:
    match = re.search(r"^HEALTHCHECK .*? CMD (.+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match is not None
    async with serve(tmp_path / "data") as served:
        port = served.url.rsplit(":", 1)[1]
        check = await asyncio.create_subprocess_shell(
            match.group(1), env={"PATH": _python_path(), "GATEWAY_PORT": port}
        )
        assert await asyncio.wait_for(check.wait(), timeout=30) == 0
        await served.stop()
    # With the gateway gone the same check fails.
    check = await asyncio.create_subprocess_shell(
        match.group(1),
        env={"PATH": _python_path(), "GATEWAY_PORT": port},
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await asyncio.wait_for(check.wait(), timeout=30) == 1


def _python_path() -> str:
    """A PATH whose `python` is this interpreter (the image's `python`)."""
    return f"{Path(__import__('sys').executable).parent}:/usr/bin:/bin"
