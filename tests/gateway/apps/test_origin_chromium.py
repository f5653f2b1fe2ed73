"""A real browser on an instance origin: headless Chromium opens a launch URL with no
header, keeps the cookie, runs the page under its CSP, and posts to `/domo/...` same-origin.

Skipped only when no `chromium` is installed (`.ci/run` installs Debian's)."""

from __future__ import annotations

import asyncio
import json
import shutil
from http import HTTPStatus
from pathlib import Path

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.keys import APP_INSTANCE, PRINCIPAL
from gateway.settings import Settings
from tests.gateway.apps.browser import place_instance
from tests.gateway.callers import Caller, Client
from tests.openapi_check import Conformance, watch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")
BROWSER_TIMEOUT_S = 60.0

# The app: an inline script (the page's own, given the nonce) and a blocked one (an
# injected handler attribute runs nothing under the policy), then a same-origin POST with
# the cookie only, as the documentation's plain `fetch` sample does.
PAGE = b"""<!doctype html><html><head><title>start</title>
<script>
  document.title = "sid:" + (typeof window.__RYUU_SID__);
  fetch("/domo/test/whoami", {method: "POST", headers: {"Content-Type": "application/json"},
                              body: "{}"})
    .then(r => r.text().then(t => { out().textContent = r.status + " " + t; }))
    .catch(e => { out().textContent = "error " + e; });
  function out() { return document.getElementById("out"); }
</script></head>
<body><pre id="out">waiting</pre>
<img src="x" onerror="document.body.dataset.xss = 'ran'"></body></html>
"""


async def whoami(request: web.Request) -> web.Response:
    """A test-only `/domo/...` handler: the session's caller and instance."""
    return web.json_response(
        {"user_id": request[PRINCIPAL].user_id, "instance": request.get(APP_INSTANCE)}
    )


@pytest.fixture
def app(settings: Settings, conformance: Conformance) -> web.Application:
    """The real application plus the test-only `/domo/` route."""
    application = watch(create_app(settings), conformance)
    application.router.add_post("/domo/test/whoami", whoami)
    return application


async def _dump_dom(url: str, profile: Path) -> str:
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), BROWSER_TIMEOUT_S)
    return out.decode()


async def test_chromium_opens_a_launch_url_and_posts_same_origin(
    client: Client, owner: Caller, tmp_path: Path
) -> None:
    app_id, iid = await place_instance(client, owner, {"index.html": PAGE})
    launched = await client.post(
        f"/api/v1/apps/{app_id}/instances/{iid}/launch", headers=owner.headers
    )
    assert launched.status == HTTPStatus.OK
    dom = await _dump_dom((await launched.json())["url"], tmp_path / "profile")
    assert "<title>sid:string</title>" in dom
    expected = json.dumps({"user_id": owner.user_id, "instance": iid})
    assert f'<pre id="out">200 {expected}</pre>' in dom
    assert "data-xss" not in dom
