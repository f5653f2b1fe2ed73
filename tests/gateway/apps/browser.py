"""Browsers for the instance-origin tests: an HTTP client for which every
`*.apps.localhost` name is 127.0.0.1 and that keeps cookies, a real headless Chromium driven
over the DevTools protocol, and helpers that place an app with files and open its instances."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import socket
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

from aiohttp import ClientSession, ClientWebSocketResponse, CookieJar, TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from tests.gateway.apps.zips import MANIFEST, make_zip
from tests.gateway.callers import Caller, Client

APPS_DOMAIN: Final = ".apps.localhost"
INDEX: Final = (
    b"<!DOCTYPE html><html><head><title>Board</title>"
    b'<script src="app.js"></script></head><body>board</body></html>'
)
FILES: Final = {
    "index.html": INDEX,
    "app.js": b"console.log('board');",
    "style.css": b"body { color: red; }",
    "logo.png": b"\x89PNG\r\n\x1a\nnot really",
    "data.bin": b"\x00\x01",
    "bare.html": b"<p>no head here</p>",
    "docs/index.html": b"<!doctype html><p>docs</p>",
}


class AppsResolver(AbstractResolver):
    """Resolves app instance names to loopback, and refuses every other name."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not host.endswith(APPS_DOMAIN):
            raise OSError(f"the test browser resolves only *{APPS_DOMAIN}, not {host!r}")
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""


def new_browser() -> ClientSession:
    """A client with a cookie jar, resolving app instance names to loopback."""
    connector = TCPConnector(resolver=AppsResolver(), use_dns_cache=False)
    return ClientSession(connector=connector, cookie_jar=CookieJar())


def origin(client: Client, instance_id: str) -> str:
    """The instance's origin under the test's settings (the default template)."""
    return f"http://{instance_id}{APPS_DOMAIN}:{client.port}"


async def place_instance(
    client: Client,
    caller: Caller,
    files: dict[str, bytes] = FILES,
    manifest: dict[str, Any] = MANIFEST,
) -> tuple[str, str]:
    """Upload an app with `files` and place an instance of it: `(app id, instance id)`."""
    response = await client.post(
        "/api/v1/apps",
        headers={**caller.headers, "Content-Type": "application/zip"},
        data=make_zip(files, manifest=manifest),
    )
    assert response.status == HTTPStatus.CREATED, await response.text()
    app_id = str((await response.json())["id"])
    return app_id, await add_instance(client, caller, app_id)


async def add_instance(client: Client, caller: Caller, app_id: str) -> str:
    """Place another instance of the app; returns its id."""
    response = await client.post(
        f"/api/v1/apps/{app_id}/instances", headers=caller.headers, json={}
    )
    assert response.status == HTTPStatus.CREATED, await response.text()
    return str((await response.json())["id"])


async def launch_url(client: Client, caller: Caller, app_id: str, instance_id: str) -> str:
    """A one-time launch URL of the instance for `caller` (what a browser opens, no header)."""
    response = await client.post(
        f"/api/v1/apps/{app_id}/instances/{instance_id}/launch", headers=caller.headers
    )
    assert response.status == HTTPStatus.OK, await response.text()
    return str((await response.json())["url"])


async def exchange_url(client: Client, caller: Caller, instance_id: str) -> str:
    """Where `GET /apps/{iid}/` sends the caller's browser: the exchange with a fresh code."""
    response = await client.get(
        f"/apps/{instance_id}/", headers=caller.headers, allow_redirects=False
    )
    assert response.status == HTTPStatus.FOUND, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    return response.headers["Location"]


async def sign_in(browser: ClientSession, client: Client, caller: Caller, instance_id: str) -> str:
    """Open the instance in `browser` as `caller`; returns the session id it holds."""
    response = await browser.get(await exchange_url(client, caller, instance_id))
    assert response.status == HTTPStatus.OK, await response.text()
    assert str(response.url) == origin(client, instance_id) + "/"
    return session_of(browser, client, instance_id)


def session_of(browser: ClientSession, client: Client, instance_id: str) -> str:
    """The session cookie the browser holds for the instance's origin."""
    cookies = browser.cookie_jar.filter_cookies(URL(origin(client, instance_id)))
    return cookies["ryuu_sid"].value


# A real browser: Debian's headless Chromium, driven over the DevTools protocol (no download).
CHROMIUM: Final = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM: Final = "no chromium on this machine: install it with `apt-get install chromium`"
# Bounds a hang (a page that never answers), never an expected duration.
BROWSER_TIMEOUT_S: Final = 60.0
_DEVTOOLS: Final = "DevTools listening on "
_STDERR_LINES: Final = 40
_CLOSE_S: Final = 10.0
# Headless, loopback only: no proxy, no background traffic (updates, sync, pings).
_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-pings",
    "--remote-debugging-port=0",
)
# Waits until the page marks `selector` done (`data-done`), then gives its text; at once
# when the page has no such element (a 401 page, a missing file), with what it says instead.
_RESULT_OF: Final = """(selector) => new Promise((resolve) => {
  const look = () => {
    const element = document.querySelector(selector);
    if (element === null) {
      resolve({done: null, text: document.body ? document.body.innerText : ""});
    } else if (element.dataset.done) {
      resolve({done: element.dataset.done, text: element.textContent});
    } else {
      new MutationObserver((_, observer) => {
        if (element.dataset.done) {
          observer.disconnect();
          resolve({done: element.dataset.done, text: element.textContent});
        }
      }).observe(element, {attributes: true, childList: true, subtree: true});
    }
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", look);
  } else {
    look();
  }
})"""


class DevToolsError(AssertionError):
    """Chromium refused a command, a page threw, or a navigation failed."""


class Chromium:
    """One tab of a headless Chromium, driven over the DevTools protocol.

    Commands are sent one at a time and answered in order; events are not needed (a
    navigation's answer comes once it has committed) and are skipped.
    """

    def __init__(self, channel: ClientWebSocketResponse, stderr: deque[str]) -> None:
        self._channel = channel
        self._stderr = stderr
        self._ids = itertools.count(1)
        self._session: str | None = None

    async def attach(self) -> None:
        """Open a fresh tab and direct every later command to it."""
        target = await self.command("Target.createTarget", url="about:blank")
        attached = await self.command(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        self._session = attached["sessionId"]

    async def command(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command; its `result`.

        Raises:
            DevToolsError: Chromium answered with an error or did not answer in time.
        """
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if self._session is not None:
            message["sessionId"] = self._session
        await self._channel.send_json(message)
        try:
            async with asyncio.timeout(BROWSER_TIMEOUT_S):
                while True:
                    answer = await self._channel.receive_json()
                    if answer.get("id") == number:
                        break
        except TimeoutError:
            raise self._failure(f"{method}: no answer") from None
        if "error" in answer:
            raise self._failure(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def open(self, url: str) -> None:
        """Navigate the tab to `url`, following redirects, as typing it would.

        Raises:
            DevToolsError: the navigation failed (no answer, refused, not resolved).
        """
        navigated = await self.command("Page.navigate", url=url)
        if navigated.get("errorText"):
            raise self._failure(f"opening {url}: {navigated['errorText']}")

    async def evaluate(self, expression: str) -> Any:
        """Run `expression` in the page and await it (a promise is awaited): its JSON value.

        Raises:
            DevToolsError: it threw or rejected.
        """
        evaluated = await self.command(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in evaluated:
            details = evaluated["exceptionDetails"]
            raise self._failure(f"the page threw: {details.get('exception', details)}")
        return evaluated["result"].get("value")

    async def result(self, selector: str = "#out") -> tuple[str | None, str]:
        """What the page wrote into `selector` once it marked it done (`data-done`): the mark
        and the text; `(None, the page's text)` when the page has no such element."""
        found = await self.evaluate(f"({_RESULT_OF})({json.dumps(selector)})")
        return found["done"], found["text"]

    async def location(self) -> str:
        """The page's address."""
        return str(await self.evaluate("location.href"))

    async def close(self) -> None:
        """Ask the browser to end (the tab's session no longer applies)."""
        self._session = None
        number = next(self._ids)
        await self._channel.send_json({"id": number, "method": "Browser.close"})

    def _failure(self, message: str) -> DevToolsError:
        return DevToolsError(message + "\nchromium's last lines:\n" + "\n".join(self._stderr))


@asynccontextmanager
async def headless_chromium(profile: Path) -> AsyncIterator[Chromium]:
    """Start a headless Chromium with a fresh profile in `profile`; a tab of it.

    The DevTools port is the one Chromium picks (it prints the address on stderr), so no
    port is fixed; stderr is drained all along, its last lines kept for failure messages.
    """
    assert CHROMIUM is not None, NO_CHROMIUM
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        *_FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    stderr: deque[str] = deque(maxlen=_STDERR_LINES)
    address: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    drain = asyncio.create_task(_drain(process, stderr, address))
    closing = False
    try:
        async with ClientSession() as http:
            async with asyncio.timeout(BROWSER_TIMEOUT_S):
                channel = await http.ws_connect(await address, max_msg_size=0)
            async with channel:
                browser = Chromium(channel, stderr)
                await browser.attach()
                yield browser
                await browser.close()
                closing = True
    finally:
        await _stop(process, closing)
        await drain


async def _stop(process: asyncio.subprocess.Process, closing: bool) -> None:
    """Let Chromium end after `Browser.close`, or kill it (not asked, or not ending)."""
    if closing:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), _CLOSE_S)
    if process.returncode is None:
        process.kill()
        await process.wait()


async def _drain(
    process: asyncio.subprocess.Process, lines: deque[str], address: asyncio.Future[str]
) -> None:
    """Read Chromium's stderr to its end: the DevTools address, then the last lines."""
    assert process.stderr is not None
    async for raw in process.stderr:
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        if line.startswith(_DEVTOOLS) and not address.done():
            address.set_result(line.removeprefix(_DEVTOOLS))
    if not address.done():
        address.set_exception(DevToolsError("chromium ended:\n" + "\n".join(lines)))
