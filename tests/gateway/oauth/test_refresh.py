"""The refresh coordinator on both backends against the fake provider (THREATS O1, O2, O4, O5)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.accounts.tables import accounts
from gateway.accounts.vault import SecretVault
from gateway.errors import AccountNeedsReauth, NotFound
from gateway.oauth import (
    OAuthClientConfig,
    RefreshCoordinator,
    RefreshUnavailable,
    TokenEndpoint,
)
from gateway.store import create_engine, utcnow
from tests.gateway.oauth.conftest import (
    KEY_ENTRY,
    LEASE,
    MARGIN,
    POLL,
    OAuthAccount,
    expire,
    make_oauth_account,
)
from tests.gateway.oauth.fake_provider import CLIENT_SECRET, FakeProvider, Outage

ROOT = Path(__file__).parents[3]


async def _row(engine: AsyncEngine, account: OAuthAccount) -> Any:
    async with engine.connect() as connection:
        return (
            await connection.execute(select(accounts).where(accounts.c.id == account.account_id))
        ).one()


async def _secrets(
    engine: AsyncEngine, vault: SecretVault, account: OAuthAccount
) -> dict[str, str]:
    async with engine.connect() as connection:
        return await vault.load(connection, account.customer_id, account.account_id)


def _calls(
    coordinator: RefreshCoordinator, account: OAuthAccount, config: OAuthClientConfig, n: int
) -> list[asyncio.Task[str]]:
    return [
        asyncio.create_task(
            coordinator.access_token(account.customer_id, account.account_id, config)
        )
        for _ in range(n)
    ]


# --- O1: one refresh, however many callers --------------------------------------------------


async def test_o1_200_concurrent_callers_cause_one_refresh(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
    vault: SecretVault,
    outcomes: list[str],
) -> None:
    provider.delay = 0.2  # the callers overlap the refresh
    tokens = await asyncio.gather(*_calls(coordinator, expired, config, 200))
    family = provider.families[0]
    assert provider.refresh_calls == 1
    assert provider.outcomes == {"granted": 1}
    assert set(tokens) == {family.access_token}
    assert outcomes.count("refreshed") == 1
    assert "joined" in outcomes  # the others waited on the flight, not on the database
    row = await _row(engine, expired)
    assert row.refresh_lease_owner is None
    assert row.version == 2
    assert row.token_expires_at > utcnow() + timedelta(seconds=50)
    assert await _secrets(engine, vault, expired) == {
        "accesstoken": family.access_token,
        "refreshtoken": family.refresh_token,
    }


async def test_o1_two_coordinators_on_one_database_cause_one_refresh(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    migrated_db_url: str,
    vault: SecretVault,
    endpoint: TokenEndpoint,
    outcomes: list[str],
) -> None:
    # A second engine and coordinator: no shared single-flight, only the lease in the row.
    other_engine = create_engine(migrated_db_url)
    seen: list[str] = []
    other = RefreshCoordinator(
        other_engine, vault, endpoint, margin=MARGIN, lease=LEASE, poll=POLL, on_refresh=seen.append
    )
    try:
        provider.delay = 0.2
        tokens = await asyncio.gather(
            *_calls(coordinator, expired, config, 100), *_calls(other, expired, config, 100)
        )
    finally:
        await other_engine.dispose()
    assert provider.refresh_calls == 1
    assert provider.outcomes == {"granted": 1}
    assert set(tokens) == {provider.families[0].access_token}
    # One side refreshed; the other used its result, whether it waited on the lease or only
    # read the row afterwards (on a loaded machine either may happen).
    assert sorted([outcomes.count("refreshed"), seen.count("refreshed")]) == [0, 1]
    assert provider.replays == 0


async def test_o1_two_processes_on_one_database_cause_one_refresh(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    migrated_db_url: str,
    outcomes: list[str],
) -> None:
    # The processes usually overlap, but on a loaded machine one may finish before the other
    # starts: the test asserts what must hold either way, never who waited for whom.
    provider.delay = 0.3
    peer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.gateway.oauth.peer",
        migrated_db_url,
        provider.token_url,
        KEY_ENTRY,
        expired.customer_id,
        expired.account_id,
        "100",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert peer.stdin is not None
    assert peer.stdout is not None
    ours: list[str] = []
    try:
        async with asyncio.timeout(60):
            ready = await peer.stdout.readline()  # imported and connected
        if ready.strip() == b"ready":
            peer.stdin.write(b"go\n")
            await peer.stdin.drain()
            ours = await asyncio.gather(*_calls(coordinator, expired, config, 100))
        out, err = await asyncio.wait_for(peer.communicate(), 60)
    finally:
        if peer.returncode is None:
            peer.kill()
            await peer.wait()
    assert peer.returncode == 0, err.decode()[-2000:]
    assert ready.strip() == b"ready", err.decode()[-2000:]
    theirs = json.loads(out.decode().strip().splitlines()[-1])
    # Exactly one refresh at the provider, and no invalid_grant or replayed refresh token.
    assert provider.refresh_calls == 1
    assert provider.outcomes == {"granted": 1}
    assert provider.replays == 0
    assert outcomes.count("refreshed") + theirs["outcomes"].count("refreshed") == 1
    # Every caller of both processes got the new token.
    new_token = provider.families[0].access_token
    assert theirs["errors"] == []
    assert theirs["tokens"] == [new_token]
    assert len(ours) == 100
    assert set(ours) == {new_token}


class _Interleaved(RefreshCoordinator):
    """Lets another process finish a whole refresh between this one's read and its lease."""

    _pending: tuple[RefreshCoordinator, OAuthAccount, OAuthClientConfig] | None = None

    def interleave(
        self, other: RefreshCoordinator, account: OAuthAccount, config: OAuthClientConfig
    ) -> None:
        self._pending = (other, account, config)

    async def _acquire(self, account_id: str, owner: str) -> bool:
        pending, self._pending = self._pending, None
        if pending is not None:
            other, account, config = pending
            await other.access_token(account.customer_id, account.account_id, config)
        return await super()._acquire(account_id, owner)


async def test_o1_a_refresh_between_our_read_and_our_lease_is_not_repeated(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
    vault: SecretVault,
    endpoint: TokenEndpoint,
    outcomes: list[str],
) -> None:
    late = _Interleaved(
        engine, vault, endpoint, margin=MARGIN, lease=LEASE, poll=POLL, on_refresh=outcomes.append
    )
    late.interleave(coordinator, expired, config)
    token = await late.access_token(expired.customer_id, expired.account_id, config)
    # The re-read after taking the lease found the other's tokens: no second request, which
    # would have replayed the rotated-away refresh token.
    assert token == provider.families[0].access_token
    assert provider.refresh_calls == 1
    assert provider.replays == 0
    assert outcomes == ["refreshed", "refreshed_elsewhere"]


async def test_o1_a_lapsed_lease_of_a_dead_process_is_taken_over(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
) -> None:
    # A process took the lease and died; the lease lapses shortly.
    async with engine.begin() as connection:
        await connection.execute(
            update(accounts)
            .where(accounts.c.id == expired.account_id)
            .values(
                refresh_lease_owner="dead-process",
                refresh_lease_expires_at=utcnow() + timedelta(seconds=0.3),
            )
        )
    token = await coordinator.access_token(expired.customer_id, expired.account_id, config)
    assert token == provider.families[0].access_token
    assert provider.refresh_calls == 1


async def test_o1_a_refresh_by_another_process_is_used_while_waiting(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
    vault: SecretVault,
    outcomes: list[str],
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(accounts)
            .where(accounts.c.id == expired.account_id)
            .values(
                refresh_lease_owner="other-process",
                refresh_lease_expires_at=utcnow() + timedelta(seconds=3),
            )
        )
    waiting = _calls(coordinator, expired, config, 5)
    await asyncio.sleep(0.2)
    # The other process stores its refresh the way the coordinator does.
    async with engine.begin() as connection:
        await connection.execute(
            update(accounts)
            .where(accounts.c.id == expired.account_id)
            .values(
                token_expires_at=utcnow() + timedelta(hours=1),
                version=accounts.c.version + 1,
                refresh_lease_owner=None,
                refresh_lease_expires_at=None,
            )
        )
        await vault.store(
            connection,
            expired.customer_id,
            expired.account_id,
            {"accesstoken": "at-from-elsewhere", "refreshtoken": "rt-from-elsewhere"},
        )
    assert set(await asyncio.gather(*waiting)) == {"at-from-elsewhere"}
    assert provider.refresh_calls == 0
    assert "refreshed_elsewhere" in outcomes


# --- O2: rotated refresh tokens are never replayed ------------------------------------------


async def test_o2_sequential_refreshes_never_replay_a_refresh_token(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
    vault: SecretVault,
) -> None:
    family = provider.families[0]
    for round_ in range(1, 6):
        token = await coordinator.access_token(expired.customer_id, expired.account_id, config)
        assert token == family.access_token
        assert provider.refresh_calls == round_
        # The rotated refresh token was stored by the time the access token came back.
        assert (await _secrets(engine, vault, expired))["refreshtoken"] == family.refresh_token
        await expire(engine, expired)
    assert provider.replays == 0
    assert not family.revoked
    assert len(family.used) == 5


async def test_o2_a_cancelled_caller_does_not_lose_the_rotated_token(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
    vault: SecretVault,
) -> None:
    provider.delay = 0.3
    (caller,) = _calls(coordinator, expired, config, 1)
    for _ in range(500):  # until the refresh request is at the provider (bounded: 5 s)
        if provider.refresh_calls:
            break
        await asyncio.sleep(0.01)
    assert provider.refresh_calls == 1
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await coordinator.close()  # the detached refresh finishes and stores
    await provider.idle()  # the provider has rotated the refresh token by now
    family = provider.families[0]
    assert len(family.used) == 1
    assert (await _secrets(engine, vault, expired))["refreshtoken"] == family.refresh_token
    await expire(engine, expired)
    provider.delay = 0
    assert await coordinator.access_token(expired.customer_id, expired.account_id, config)
    assert provider.replays == 0
    assert provider.refresh_calls == 2


# --- O4: invalid_grant -----------------------------------------------------------------------


async def test_o4_invalid_grant_marks_the_account_and_stops(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
    outcomes: list[str],
) -> None:
    provider.families[0].revoked = True
    calls = _calls(coordinator, expired, config, 20)
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, AccountNeedsReauth) for r in results)
    assert provider.refresh_calls == 1
    row = await _row(engine, expired)
    assert (row.status, row.refresh_lease_owner) == ("needs_reauth", None)
    with pytest.raises(AccountNeedsReauth):
        await coordinator.access_token(expired.customer_id, expired.account_id, config)
    assert provider.refresh_calls == 1  # no second request
    assert outcomes.count("invalid_grant") == 1


async def test_o4_expired_without_a_refresh_token_needs_reauth(
    coordinator: RefreshCoordinator,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
    vault: SecretVault,
) -> None:
    account = await make_oauth_account(
        engine, vault, "at-only", None, utcnow() - timedelta(seconds=1)
    )
    with pytest.raises(AccountNeedsReauth):
        await coordinator.access_token(account.customer_id, account.account_id, config)
    assert (await _row(engine, account)).status == "needs_reauth"
    assert provider.refresh_calls == 0


# --- O5: the provider is down ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "backoff_s"),
    [("429", 30.0), ("503", 5.0), ("hang", 5.0)],
)
async def test_o5_outages_keep_the_tokens_and_back_off(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
    vault: SecretVault,
    outcomes: list[str],
    failure: str,
    backoff_s: float,
) -> None:
    if failure == "429":
        provider.outage = Outage(429, "30")
    elif failure == "503":
        provider.outage = Outage(503)
    else:
        provider.hang = True
    before = await _secrets(engine, vault, expired)
    started = utcnow()
    with pytest.raises(RefreshUnavailable) as unavailable:
        await coordinator.access_token(expired.customer_id, expired.account_id, config)
    ended = utcnow()
    assert unavailable.value.retry_after == pytest.approx(backoff_s, abs=1)
    assert await _secrets(engine, vault, expired) == before
    row = await _row(engine, expired)
    assert row.refresh_lease_owner is None
    assert row.status == "valid"
    # The backoff runs from the failure, which happened between `started` and `ended`.
    assert (row.refresh_backoff_until - started).total_seconds() > backoff_s - 0.5
    assert (row.refresh_backoff_until - ended).total_seconds() < backoff_s + 1
    # During the backoff no request is made, even once the provider is back.
    provider.outage, provider.hang = None, False
    with pytest.raises(RefreshUnavailable):
        await coordinator.access_token(expired.customer_id, expired.account_id, config)
    assert provider.refresh_calls == 1
    assert outcomes == ["unavailable"]
    assert not provider.families[0].revoked
    # After it, the refresh goes through with the kept refresh token.
    async with engine.begin() as connection:
        await connection.execute(
            update(accounts)
            .where(accounts.c.id == expired.account_id)
            .values(refresh_backoff_until=utcnow() - timedelta(seconds=1))
        )
    token = await coordinator.access_token(expired.customer_id, expired.account_id, config)
    assert token == provider.families[0].access_token
    assert provider.replays == 0


async def test_o5_a_token_expiring_within_the_margin_is_used_during_an_outage(
    coordinator: RefreshCoordinator,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
    vault: SecretVault,
) -> None:
    family = provider.grant()
    account = await make_oauth_account(
        engine,
        vault,
        family.access_token,
        family.refresh_token,
        utcnow() + timedelta(seconds=5),  # within the 10 s margin, not expired
    )
    provider.outage = Outage(503)
    for _ in range(3):
        token = await coordinator.access_token(account.customer_id, account.account_id, config)
        assert token == family.access_token
    assert provider.refresh_calls == 1
    assert (await _row(engine, account)).refresh_backoff_until > utcnow()


async def test_repeated_failures_back_off_exponentially(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
) -> None:
    provider.outage = Outage(503)
    waits = []
    for _ in range(3):
        with pytest.raises(RefreshUnavailable) as unavailable:
            await coordinator.access_token(expired.customer_id, expired.account_id, config)
        waits.append(unavailable.value.retry_after)
        async with engine.begin() as connection:
            await connection.execute(
                update(accounts)
                .where(accounts.c.id == expired.account_id)
                .values(refresh_backoff_until=utcnow() - timedelta(seconds=1))
            )
    assert waits == [5.0, 10.0, 20.0]


# --- after a 401 -----------------------------------------------------------------------------


@pytest.fixture
async def fresh(engine: AsyncEngine, vault: SecretVault, provider: FakeProvider) -> OAuthAccount:
    """An account whose access token is good for an hour."""
    family = provider.grant()
    return await make_oauth_account(
        engine, vault, family.access_token, family.refresh_token, utcnow() + timedelta(hours=1)
    )


async def test_after_401_a_stale_token_gets_the_stored_one_without_a_request(
    coordinator: RefreshCoordinator,
    fresh: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
) -> None:
    better = await coordinator.after_unauthorized(
        fresh.customer_id, fresh.account_id, config, "at-stale-from-an-earlier-run"
    )
    assert better == provider.families[0].access_token
    assert provider.refresh_calls == 0


async def test_after_401_concurrent_callers_with_the_current_token_cause_one_refresh(
    coordinator: RefreshCoordinator,
    fresh: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
) -> None:
    family = provider.families[0]
    rejected = family.access_token
    provider.delay = 0.1
    better = await asyncio.gather(
        *(
            coordinator.after_unauthorized(fresh.customer_id, fresh.account_id, config, rejected)
            for _ in range(50)
        )
    )
    assert set(better) == {family.access_token} != {rejected}
    assert provider.refresh_calls == 1
    # Once more with the same (now stale) token: the stored one, no request.
    again = await coordinator.after_unauthorized(
        fresh.customer_id, fresh.account_id, config, rejected
    )
    assert again == family.access_token
    assert provider.refresh_calls == 1


async def test_after_401_outage_and_revocation(
    coordinator: RefreshCoordinator,
    fresh: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
) -> None:
    family = provider.families[0]
    provider.outage = Outage(503)
    nothing = await coordinator.after_unauthorized(
        fresh.customer_id, fresh.account_id, config, family.access_token
    )
    assert nothing is None  # the 401 stands
    assert provider.refresh_calls == 1
    # A token that has not expired is still handed out for the next run.
    token = await coordinator.access_token(fresh.customer_id, fresh.account_id, config)
    assert token == family.access_token
    async with engine.begin() as connection:
        await connection.execute(
            update(accounts)
            .where(accounts.c.id == fresh.account_id)
            .values(refresh_backoff_until=None)
        )
    provider.outage = None
    family.revoked = True
    with pytest.raises(AccountNeedsReauth):
        await coordinator.after_unauthorized(
            fresh.customer_id, fresh.account_id, config, family.access_token
        )
    assert (await _row(engine, fresh)).status == "needs_reauth"


async def test_after_401_a_different_but_expired_stored_token_is_refreshed(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
) -> None:
    better = await coordinator.after_unauthorized(
        expired.customer_id, expired.account_id, config, "at-stale-from-an-earlier-run"
    )
    assert better == provider.families[0].access_token
    assert provider.refresh_calls == 1


async def test_refresh_now_refreshes_a_fresh_token(
    coordinator: RefreshCoordinator,
    fresh: OAuthAccount,
    provider: FakeProvider,
    config: OAuthClientConfig,
) -> None:
    family = provider.families[0]
    first = family.access_token
    token = await coordinator.refresh_now(fresh.customer_id, fresh.account_id, config)
    assert token == family.access_token != first
    assert provider.refresh_calls == 1
    provider.outage = Outage(429, "30")
    with pytest.raises(RefreshUnavailable) as unavailable:
        await coordinator.refresh_now(fresh.customer_id, fresh.account_id, config)
    assert unavailable.value.retry_after == 30.0
    with pytest.raises(RefreshUnavailable):  # backing off: no request
        await coordinator.refresh_now(fresh.customer_id, fresh.account_id, config)
    assert provider.refresh_calls == 2


# --- access and secrets ----------------------------------------------------------------------


async def test_only_the_accounts_customer_reaches_it(
    coordinator: RefreshCoordinator,
    expired: OAuthAccount,
    fresh: OAuthAccount,
    config: OAuthClientConfig,
) -> None:
    with pytest.raises(NotFound):
        await coordinator.access_token(fresh.customer_id, expired.account_id, config)


async def test_no_token_or_secret_in_errors_or_logs(
    coordinator: RefreshCoordinator,
    provider: FakeProvider,
    config: OAuthClientConfig,
    engine: AsyncEngine,
    vault: SecretVault,
) -> None:
    accounts_ = []
    for _ in range(4):
        family = provider.grant()
        accounts_.append(
            await make_oauth_account(
                engine,
                vault,
                family.access_token,
                family.refresh_token,
                utcnow() - timedelta(seconds=1),
            )
        )
    wrong_client = OAuthClientConfig(
        token_url=config.token_url, client_id=config.client_id, client_secret="wrong-Mq7"
    )
    messages: list[str] = []
    with structlog.testing.capture_logs() as logs:
        ok = accounts_[0]
        await coordinator.access_token(ok.customer_id, ok.account_id, config)
        provider.families[1].revoked = True
        for account, used in (
            (accounts_[1], config),
            (accounts_[2], wrong_client),
        ):
            with pytest.raises((AccountNeedsReauth, RefreshUnavailable)) as failed:
                await coordinator.access_token(account.customer_id, account.account_id, used)
            messages.append(repr(failed.value) + str(failed.value))
        provider.outage = Outage(429, "60")
        with pytest.raises(RefreshUnavailable) as limited:
            await coordinator.access_token(
                accounts_[3].customer_id, accounts_[3].account_id, config
            )
        messages.append(repr(limited.value) + str(limited.value))
    captured = repr(logs) + "".join(messages)
    assert {e["event"] for e in logs} >= {
        "oauth_token_refreshed",
        "oauth_account_needs_reauth",
        "oauth_refresh_backing_off",
    }
    secrets = [CLIENT_SECRET, "wrong-Mq7"]
    for family in provider.families:
        secrets += [family.access_token, family.refresh_token, *family.used]
    assert [s for s in secrets if s in captured] == []
