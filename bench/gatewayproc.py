"""`gateway serve` in a subprocess, set up with one published action to run under load.

`Gateway(upstream_url)` bootstraps a platform admin in a temporary data directory, starts the
real entry point on a free port of 127.0.0.1 (`GATEWAY_EGRESS_ALLOW_PRIVATE=true`, default
worker count), creates an action connector whose process script makes one `httprequest.get`
to the upstream and puts the answer's first cell into its datagrid, an account, and publishes
it. `target` is then the request a caller sends to run it: `POST /domo/actions/v1/{guid}/process`,
or the development run of the action where the gateway does not have that endpoint yet. The
gateway logs into a file of the data directory, as it would into a file or pipe in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import ClientSession
from yarl import URL

_ROOT: Final = Path(__file__).resolve().parent.parent
_START_TIMEOUT_S: Final = 60.0
_STOP_TIMEOUT_S: Final = 15.0

ACTION_SCRIPT: Final = """
var answer = JSON.parse(httprequest.get('{url}'));
datagrid.addColumn('name', datagrid.DATA_TYPE_STRING);
datagrid.addCell(answer.items[0].name);
datagrid.endRow();
"""
"""One upstream call, its first cell in the datagrid (`bench.bare.first_cell` answers the same)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The request that runs the action: method, URL, headers and body."""

    name: str
    url: URL
    headers: tuple[str, ...]
    body: str


class GatewayError(RuntimeError):
    """The gateway did not start or refused a set-up step; the message says which."""


class Gateway:
    """`async with Gateway(upstream_url) as gateway:` runs and sets up `gateway serve`."""

    def __init__(self, upstream_url: str) -> None:
        self._upstream = URL(upstream_url)
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-gateway-")
        self._data = Path(self._tmp.name) / "data"
        self._log = Path(self._tmp.name) / "gateway.log"
        self._process: asyncio.subprocess.Process | None = None
        self.url = URL()
        self.pid = 0
        self.target: Target | None = None

    def _env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "GATEWAY_DATA_DIR": str(self._data),
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": "0",
            "GATEWAY_EGRESS_ALLOW_PRIVATE": "true",
        }

    async def __aenter__(self) -> Self:
        try:
            token = await self._bootstrap()
            await self._start()
            self.target = await self._set_up(token)
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _bootstrap(self) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "admin", "bootstrap", "--customer", "bench",
            "--email", "admin@bench.test", env=self._env(), cwd=_ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), _START_TIMEOUT_S)
        if process.returncode != 0:
            raise GatewayError(f"bootstrap failed: {err.decode()[-500:]}")
        return out.decode().strip().splitlines()[-1]

    async def _start(self) -> None:
        with self._log.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "serve", env=self._env(), cwd=_ROOT,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        self.pid = self._process.pid
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _START_TIMEOUT_S
        while not (started := self._started_url()):
            if self._process.returncode is not None or loop.time() > deadline:
                raise GatewayError(f"gateway serve did not start: {self.log_tail()}")
            await asyncio.sleep(0.05)
        self.url = URL(started)
        async with ClientSession() as session:
            while loop.time() < deadline:
                with contextlib.suppress(OSError):
                    async with session.get(self.url / "readyz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise GatewayError(f"gateway serve never became ready: {self.log_tail()}")

    def _started_url(self) -> str | None:
        for line in self._log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("event") == "gateway_starting":
                    return str(entry["url"])
        return None

    def log_tail(self) -> str:
        """The end of the gateway's log (for a failure message)."""
        return self._log.read_text(errors="replace")[-1500:]

    async def _set_up(self, token: str) -> Target:
        auth = f"Authorization: Bearer {token}"
        host = f"{self._upstream.host}:{self._upstream.port}"
        async with ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            call = _Caller(session, self.url / "api/v1")
            connector = await call("POST", "connectors", json={
                "kind": "action", "name": "Bench action", "key": "bench",
                "auth": {"method": "apikey"}, "allowed_hosts": [host],
            })  # fmt: skip
            guid = connector["guid"]
            scripts = {"auth": "auth.authenticationSuccess();",
                       "process": ACTION_SCRIPT.format(url=self._upstream)}  # fmt: skip
            for kind, source in scripts.items():
                await call("PUT", f"connectors/{guid}/scripts/{kind}", data=source.encode(),
                           headers={"Content-Type": "application/javascript"})  # fmt: skip
            account = await call("POST", "accounts", json={
                "connector_key": "bench", "name": "bench", "credentials": {"apikey": "k-123456"},
            })  # fmt: skip
            await call("POST", f"connectors/{guid}/publish")
            process = Target(
                "process", (self.url / f"domo/actions/v1/{guid}/process").with_query(
                    account=account["id"]), (auth, "Content-Type: application/json"), "{}",
            )  # fmt: skip
            if await _answers(session, process):
                return process
        body = json.dumps({"mode": "process", "account_id": account["id"]})
        return Target(
            "dev run", self.url / f"api/v1/connectors/{guid}/runs",
            (auth, "Content-Type: application/json"), body,
        )  # fmt: skip

    async def _stop(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self._tmp.cleanup()


async def _answers(session: ClientSession, target: Target) -> bool:
    """Whether the gateway runs the action at `target` (the process endpoint is new: a
    gateway without it answers 404 `not_found`, and the benchmark measures a dev run).

    Raises:
        GatewayError: the endpoint exists but did not answer the action's cell.
    """
    async with session.post(target.url, data=target.body.encode(),
                            headers={"Content-Type": "application/json"}) as response:  # fmt: skip
        text = await response.text()
    if response.status == 404 and '"not_found"' in text:
        return False
    if response.status != 200 or json.loads(text) != "a":
        raise GatewayError(f"the process endpoint answered {response.status}: {text[:300]}")
    return True


class _Caller:
    """JSON calls to the management API that must succeed."""

    def __init__(self, session: ClientSession, base: URL) -> None:
        self._session = session
        self._base = base

    async def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self._session.request(method, self._base / path, **kwargs) as response:
            text = await response.text()
            if response.status >= 300:
                raise GatewayError(f"{method} {path}: {response.status} {text[:300]}")
            return json.loads(text) if text else None
