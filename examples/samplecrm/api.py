"""A local Sample CRM API: the documentation's `https://developer.domo.com/samplecrm`, offline.

Run it from the repository's root with the project's Python:

    .venv/bin/python -m examples.samplecrm.api --port 8443 --ca-dir data/samplecrm-ca

It serves HTTPS with a certificate for `developer.domo.com` signed by a CA it keeps in
`--ca-dir`; point the gateway at it with `GATEWAY_EGRESS_CONNECT_TO`,
`GATEWAY_EGRESS_CA_FILE` and `GATEWAY_EGRESS_ALLOWED_NETWORKS` (see the README).
"""

from __future__ import annotations

import argparse
import base64
import hmac
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from aiohttp import web

from examples.tls import make_local_ca

HOSTNAME: Final = "developer.domo.com"
USERNAME: Final = "crm-user"
PASSWORD: Final = "s3cret-crm-pass"  # noqa: S105 - the fake API's documented demo login
CREDENTIALS: Final = web.AppKey("credentials", tuple[str, str])

CSV_HEADER: Final = (
    "Account.Id,Account.Industry,Account.Name,Amount,CloseDate,CreatedDate,Id,IsClosed,IsWon,"
    "LastActivityDate,LastModifiedDate,LeadSource,Name,NextStep,Probability,StageName,Type,"
    "ForecastCategoryName,Strategic_Account__c,Forecasted_ACV__c,Competitor__c,"
    "Owner.CreatedDate,Owner.Email,Owner.FullPhotoUrl,Owner.Id,Owner.IsActive,Owner.Manager,"
    "Owner.Name,Owner.UserRole.Name"
)
CSV_ROWS: Final = (
    "001A,Energy,Grand Hotels,125000.5,2017-01-05,2016-11-02T10:15:00,006A,true,true,"
    "2017-01-04,2017-01-06T08:00:00,Web,Grand deal,Sign,90,Closed Won,New Customer,Closed,"
    "yes,130000,None,2015-03-01T09:00:00,ann@crm.test,http://crm.test/p/1,005A,true,"
    "005Z,Ann Lee,Sales",
    "001B,Media,Pyramid Co,42000,2017-02-10,2016-12-12T16:45:30,006B,false,false,"
    "2017-02-01,2017-02-09T12:30:00,Phone,Pyramid renewal,Call,40,Prospecting,Existing,"
    "Pipeline,no,45000,Acme,2015-04-02T10:00:00,bob@crm.test,http://crm.test/p/2,005B,true,"
    "005Z,Bob Stone,Sales",
)


async def samplecrm(request: web.Request) -> web.Response:
    """The opportunities as CSV, or 401 without the right Basic credentials.

    Lines end in a bare CR: the documentation's process script splits on `\\r`.
    """
    username, password = request.app[CREDENTIALS]
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return web.Response(status=401, text="unauthorized")
    return web.Response(text="\r".join([CSV_HEADER, *CSV_ROWS]), content_type="text/csv")


def add_routes(app: web.Application, username: str = USERNAME, password: str = PASSWORD) -> None:
    """Serve `/samplecrm` on `app`, accepting these Basic credentials."""
    app[CREDENTIALS] = (username, password)
    app.router.add_get("/samplecrm", samplecrm)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m examples.samplecrm.api", description="A local Sample CRM API over HTTPS"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument(
        "--ca-dir",
        type=Path,
        default=Path("data/samplecrm-ca"),
        help="where the CA lives (created on first use; ca.pem is what clients trust)",
    )
    parser.add_argument("--username", default=USERNAME)
    parser.add_argument("--password", default=PASSWORD)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; returns the exit code."""
    args = _arguments(argv)
    ca = make_local_ca(args.ca_dir, [HOSTNAME])
    app = web.Application()
    add_routes(app, args.username, args.password)
    sys.stdout.write(
        f"Sample CRM API: https://{HOSTNAME}/samplecrm on {args.host}:{args.port}, "
        f"trusting {ca.ca_file}\n"
    )
    sys.stdout.flush()
    web.run_app(app, host=args.host, port=args.port, ssl_context=ca.server_context, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
