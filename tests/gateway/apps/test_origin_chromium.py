"""A real browser on an instance origin: headless Chromium opens a launch URL with no
header, keeps the cookie, runs the page under its CSP, and posts to `/domo/...` same-origin.

Skipped only when no `chromium` is installed (`.ci/run` installs Debian's)."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.keys import APP_INSTANCE, PRINCIPAL
from gateway.settings import Settings
from tests.gateway.apps.browser import (
    CHROMIUM,
    NO_CHROMIUM,
    Chromium,
    launch_url,
    place_instance,
)
from tests.gateway.callers import Caller, Client
from tests.openapi_check import Conformance, watch

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)

# The app: an inline script (the page's own, given the nonce) and a blocked one (an
# injected handler attribute runs nothing under the policy), then a same-origin POST with
# the cookie only, as the documentation's plain `fetch` sample does.
PAGE = b"""<!doctype html><html><head><title>start</title>
<script>
  document.title = "sid:" + (typeof window.__RYUU_SID__);
  fetch("/domo/test/whoami", {method: "POST", headers: {"Content-Type": "application/json"},
                              body: "{}"})
    .then(r => r.text().then(t => { out().textContent = r.status + " " + t; }))
    .catch(e => { out().textContent = "error " + e; })
    .finally(() => { out().dataset.done = "yes"; });
  function out() { return document.getElementById("out"); }
</script></head>
<body><pre id="out">waiting</pre>
<img src="x" onerror="document.body.dataset.xss = 'ran'"></body></html>
"""

# The page's `data-xss` once the image's error event has been dispatched.
IMAGE_FAILED = """new Promise((resolve) => {
  const image = document.querySelector("img");
  const read = () => resolve(document.body.dataset.xss);
  if (image.complete) { read(); } else { image.addEventListener("error", read); }
})"""


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


async def test_chromium_opens_a_launch_url_and_posts_same_origin(
    client: Client, owner: Caller, chromium: Chromium
) -> None:
    app_id, iid = await place_instance(client, owner, {"index.html": PAGE})
    await chromium.open(await launch_url(client, owner, app_id, iid))
    _, text = await chromium.result("#out")
    assert await chromium.evaluate("document.title") == "sid:string"
    expected = json.dumps({"user_id": owner.user_id, "instance": iid})
    assert text == f"200 {expected}"
    # Once the image has failed (its error event dispatched), the injected handler had its
    # chance to run.
    assert await chromium.evaluate(IMAGE_FAILED) is None
