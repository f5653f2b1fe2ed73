"""A second gateway process for the O1 test: its own engine and coordinator, the same database.

Run as `python -m tests.gateway.oauth.peer DB_URL TOKEN_URL KEY_ENTRY CUSTOMER ACCOUNT CALLS`.
It connects, prints `ready`, waits for a line on stdin, asks for the access token CALLS
times at once, and prints one JSON line last: the tokens it got, the errors, and its
coordinator's outcomes.
"""

from __future__ import annotations

import asyncio
import json
import sys

from sqlalchemy import text

from gateway.accounts.vault import SecretVault
from gateway.crypto import KeyRing
from gateway.egress import AddressPolicy, EgressClient
from gateway.oauth import OAuthClientConfig, RefreshCoordinator, TokenEndpoint
from gateway.store import create_engine
from tests.gateway.oauth.conftest import ENDPOINT_TIMEOUT_S, LEASE, MARGIN, POLL
from tests.gateway.oauth.fake_provider import CLIENT_ID, CLIENT_SECRET


async def main(argv: list[str]) -> dict[str, object]:
    """Run the calls; return what happened."""
    db_url, token_url, key_entry, customer_id, account_id, calls = argv
    engine = create_engine(db_url)
    outcomes: list[str] = []
    async with EgressClient(AddressPolicy(allow_private=True)) as egress:
        coordinator = RefreshCoordinator(
            engine,
            SecretVault(KeyRing([key_entry])),
            TokenEndpoint(egress, timeout=ENDPOINT_TIMEOUT_S),
            margin=MARGIN,
            lease=LEASE,
            poll=POLL,
            on_refresh=outcomes.append,
        )
        config = OAuthClientConfig(
            token_url=token_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            scopes=("read", "write"),
        )
        async with engine.connect() as connection:  # connected before the start signal
            await connection.execute(text("SELECT 1"))
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        results = await asyncio.gather(
            *(coordinator.access_token(customer_id, account_id, config) for _ in range(int(calls))),
            return_exceptions=True,
        )
    await engine.dispose()
    return {
        "tokens": sorted({r for r in results if isinstance(r, str)}),
        "errors": [type(r).__name__ for r in results if isinstance(r, BaseException)],
        "outcomes": outcomes,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1:]))))  # the last line: the parent reads it
