"""Send URLs through a real `EgressClient` and print the outcomes as JSON.

Run only inside a loopback-only network namespace (`tests.netns`); it refuses to start
anywhere else. Input on stdin: `{"urls": [...], "admit_upstream": bool}`; `{upstream}` in
a URL becomes the origin of a fake upstream started here on 127.0.0.1, admitted by
`allowed_networks` when `admit_upstream` is true. Output on stdout:
`{"offsite_errno": int, "results": [{"url", "code", "message", "upstream_requests"}]}`.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import sys

from aiohttp.test_utils import TestServer

from gateway.egress import AddressPolicy, EgressClient
from runtime.host import HostCallError, HttpRequest
from tests.gateway.egress.fakes import SEEN, make_upstream_app
from tests.netns import only_loopback


def offsite_errno() -> int:
    """Try a plain connect to 10.0.0.1: in the namespace it fails at once, unrouted."""
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("10.0.0.1", 80))


async def probe(urls: list[str], admit_upstream: bool) -> list[dict[str, object]]:
    """Send each URL once and describe what happened."""
    app = make_upstream_app()
    async with TestServer(app, host="127.0.0.1") as server:
        origin = f"http://127.0.0.1:{server.port}"
        networks = (f"127.0.0.1:{server.port}",) if admit_upstream else ()
        results: list[dict[str, object]] = []
        async with EgressClient(AddressPolicy(allowed_networks=networks), total_timeout=10) as c:
            for url in urls:
                real = url.replace("{upstream}", origin)
                before = len(app[SEEN])
                try:
                    response = await c.session(None).send(
                        HttpRequest("GET", real), max_body_bytes=1024
                    )
                    code, message = f"status {response.status}", ""
                except HostCallError as exc:
                    code, message = exc.code, exc.message
                results.append(
                    {
                        "url": url,
                        "code": code,
                        "message": message,
                        "upstream_requests": len(app[SEEN]) - before,
                    }
                )
        return results


def main() -> int:
    """Check the namespace, run the probe, print JSON."""
    if not only_loopback():
        print("refusing to run outside a loopback-only network namespace", file=sys.stderr)
        return 3
    request = json.load(sys.stdin)
    unreachable = offsite_errno()
    if unreachable != errno.ENETUNREACH:
        print(f"10.0.0.1 is not unreachable here (errno {unreachable})", file=sys.stderr)
        return 4
    results = asyncio.run(probe(request["urls"], bool(request.get("admit_upstream"))))
    print(json.dumps({"offsite_errno": unreachable, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
