"""The OAuth 2.0 browser flow over HTTP against the fake provider (SPEC 4.2, 6; THREATS O3, S1).

The app is the real one (its worker pool, its egress client, its store) on SQLite and on
PostgreSQL; the provider is a real aiohttp server on 127.0.0.1 that binds codes to the
redirect URI and the PKCE challenge.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import select, update
from yarl import URL

from gateway.accounts.tables import account_secrets, accounts
from gateway.connectors.tables import runs
from gateway.crypto import DecryptionError, Sealed, associated_data, load_keyring
from gateway.keys import ENGINE, RUNS, VAULT
from gateway.oauth import new_code_verifier
from gateway.oauth.tables import oauth_states
from gateway.settings import Settings
from gateway.store import utcnow
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.connectors.conftest import create_connector
from tests.gateway.oauth.browser import (
    JSON,
    REDIRECT_URI,
    Recorder,
    authorize,
    connect,
    consent,
    create_oauth_connector,
    oauth_settings,
)
from tests.gateway.oauth.fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider, Outage


@pytest.fixture
def settings(tmp_path: Path, migrated_db_url: str) -> Settings:
    """The app on this test's backend, with the fixed public URL."""
    return oauth_settings(tmp_path, migrated_db_url)


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    """The fake provider, its tokens valid for an hour (well beyond the refresh margin)."""
    server = FakeProvider(expires_in=3600)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def crm(client: Client, owner: Caller, provider: FakeProvider) -> dict[str, Any]:
    """The OAuth 2.0 connector `crm` of `owner`'s customer."""
    return await create_oauth_connector(client, owner, provider)


async def _account_row(client: Client, account_id: str) -> Any:
    async with client.app[ENGINE].connect() as connection:
        return (await connection.execute(select(accounts).where(accounts.c.id == account_id))).one()


async def _tokens(client: Client, caller: Caller, account_id: str) -> dict[str, str]:
    async with client.app[ENGINE].connect() as connection:
        return await client.app[VAULT].load(connection, caller.customer_id, account_id)


async def _account_count(client: Client) -> int:
    async with client.app[ENGINE].connect() as connection:
        return len((await connection.execute(select(accounts.c.id))).all())


async def _pending_count(client: Client) -> int:
    async with client.app[ENGINE].connect() as connection:
        return len((await connection.execute(select(oauth_states.c.id))).all())


# --- authorize ---------------------------------------------------------------------------


async def test_authorize_redirects_with_state_pkce_and_a_sealed_verifier(
    client: Client, owner: Caller, crm: dict[str, Any], settings: Settings
) -> None:
    location = URL(await authorize(client, owner, name="Sales CRM"))
    query = dict(location.query)
    assert str(location.with_query(None)).endswith("/authorize")
    assert {k: v for k, v in query.items() if k not in ("state", "code_challenge")} == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "read write",
        "code_challenge_method": "S256",
        "audience": "crm-api",
    }
    state, challenge = query["state"], query["code_challenge"]
    assert len(state) >= 43
    assert len(challenge) == 43
    async with client.app[ENGINE].connect() as connection:
        row = (await connection.execute(select(oauth_states))).one()
    # Only the state's digest is stored; the verifier is sealed, bound to customer and state.
    state_hash = hashlib.sha256(state.encode()).hexdigest()
    assert (row.state_hash, row.user_id, row.account_name, row.account_id) == (
        state_hash,
        owner.user_id,
        "Sales CRM",
        None,
    )
    assert row.redirect_uri == REDIRECT_URI
    assert timedelta(minutes=9) < row.expires_at - utcnow() <= timedelta(minutes=10)
    keyring, _ = load_keyring(settings.encryption_keys, settings.data_dir)
    sealed = Sealed(row.verifier_key_id, row.verifier_ciphertext)
    aad = associated_data(owner.customer_id, "oauth_states", state_hash, "code_verifier")
    verifier = keyring.open(sealed, aad).decode()
    assert create_s256_code_challenge(verifier) == challenge
    assert verifier.encode() not in row.verifier_ciphertext
    other = associated_data(owner.customer_id, "oauth_states", "0" * 64, "code_verifier")
    with pytest.raises(DecryptionError):
        keyring.open(sealed, other)


async def test_authorize_refusals(
    client: Client, owner: Caller, outsider: Caller, crm: dict[str, Any]
) -> None:
    path = "/api/v1/oauth/crm/authorize"
    await problem(
        await client.get(path, allow_redirects=False), HTTPStatus.UNAUTHORIZED, "unauthenticated"
    )
    await problem(
        await client.get("/api/v1/oauth/nope/authorize", headers=owner.headers),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )
    # Another customer's connector does not exist for the caller (no existence leak).
    await problem(
        await client.get(path, headers=outsider.headers), HTTPStatus.NOT_FOUND, "not_found"
    )
    await create_connector(client, owner, key="basiccrm", auth={"method": "basic"})
    body = await problem(
        await client.get("/api/v1/oauth/basiccrm/authorize", headers=owner.headers),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    assert "does not use OAuth 2.0" in body["detail"]
    await problem(
        await client.get(path, headers=owner.headers, params={"name": "x" * 201}),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    assert await _pending_count(client) == 0


# --- the browser flow --------------------------------------------------------------------


async def test_the_browser_flow_creates_an_account_with_sealed_tokens(
    client: Client, owner: Caller, crm: dict[str, Any], provider: FakeProvider
) -> None:
    callback = await consent(await authorize(client, owner, name="Sales CRM"))
    response = await client.get(callback)  # the browser: no bearer token, HTML
    page = await response.text()
    assert response.status == HTTPStatus.OK, page
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Sales CRM" in page
    assert "ready to use" in page
    family = provider.families[-1]
    assert family.access_token not in page
    assert family.refresh_token not in page
    assert provider.requests["authorization_code"] == 1
    # The auth script ran with the new access token before anything was stored.
    assert provider.api_tokens == [family.access_token]

    listed = await (await client.get("/api/v1/accounts", headers=owner.headers)).json()
    [account] = listed["items"]
    assert (account["name"], account["connector_key"], account["auth_method"]) == (
        "Sales CRM",
        "crm",
        "oauth2",
    )
    assert (account["status"], account["secret_fields"], account["fields"]) == (
        "valid",
        ["accesstoken", "refreshtoken"],
        {},
    )
    row = await _account_row(client, account["id"])
    expected = utcnow() + timedelta(seconds=provider.expires_in)
    assert abs((row.token_expires_at - expected).total_seconds()) < 10
    assert await _tokens(client, owner, account["id"]) == {
        "accesstoken": family.access_token,
        "refreshtoken": family.refresh_token,
    }
    await client.app[RUNS].flush_runs()
    async with client.app[ENGINE].connect() as connection:
        sealed = [r.ciphertext for r in await connection.execute(select(account_secrets))]
        checks = (await connection.execute(select(runs))).all()
    assert len(sealed) == 2
    for token in (family.access_token, family.refresh_token):
        assert all(token.encode() not in blob for blob in sealed)
    # The auth-check run is stored with the token the API echoed redacted.
    [check] = checks
    assert check.kind == "auth"
    assert check.status == "success"
    assert check.result["logs"] == ['auth check: {"family": 0, "echo": "you sent [redacted]"}']
    assert await _pending_count(client) == 0


async def test_the_callback_answers_json_when_asked(
    client: Client, owner: Caller, crm: dict[str, Any]
) -> None:
    callback = await consent(await authorize(client, owner))
    response = await client.get(callback, headers=JSON)
    assert response.status == HTTPStatus.CREATED, await response.text()
    body = await response.json()
    assert body == {"account_id": body["account_id"], "status": "valid", "reauthorised": False}
    assert response.headers["Location"] == f"/api/v1/accounts/{body['account_id']}"
    assert response.headers["Cache-Control"] == "no-store"
    account = await (await client.get(response.headers["Location"], headers=owner.headers)).json()
    assert account["name"] == "CRM crm"  # no name given: the connector's name


async def test_a_needs_reauth_account_is_authorised_again(
    client: Client, owner: Caller, crm: dict[str, Any], provider: FakeProvider
) -> None:
    created = await connect(client, owner, name="Sales CRM")
    account_id = created["account_id"]
    first = provider.families[-1]
    async with client.app[ENGINE].begin() as connection:
        await connection.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(
                status="needs_reauth",
                refresh_backoff_until=utcnow() + timedelta(minutes=5),
                token_expires_at=utcnow() - timedelta(minutes=1),
            )
        )
    before = await _account_row(client, account_id)

    again = await connect(client, owner, account_id=account_id)
    assert again == {"account_id": account_id, "status": "valid", "reauthorised": True}
    second = provider.families[-1]
    assert second is not first
    row = await _account_row(client, account_id)
    assert (row.status, row.refresh_backoff_until, row.name) == ("valid", None, "Sales CRM")
    assert row.version == before.version + 1
    assert row.token_expires_at > utcnow() + timedelta(seconds=provider.expires_in - 10)
    assert await _tokens(client, owner, account_id) == {
        "accesstoken": second.access_token,
        "refreshtoken": second.refresh_token,
    }
    assert await _account_count(client) == 1
    # A name given with the re-authorisation renames the account.
    await connect(client, owner, account_id=account_id, name="Renamed")
    assert (await _account_row(client, account_id)).name == "Renamed"


async def test_reauthorisation_is_for_the_accounts_manager_and_provider(
    client: Client,
    owner: Caller,
    colleague: Caller,
    crm: dict[str, Any],
    provider: FakeProvider,
) -> None:
    account_id = (await connect(client, owner))["account_id"]
    await create_oauth_connector(client, colleague, provider, key="othercrm")
    await problem(
        await client.get(
            "/api/v1/oauth/crm/authorize",
            headers=colleague.headers,
            params={"account_id": account_id},
        ),
        HTTPStatus.FORBIDDEN,
        "account_not_accessible",
    )
    await problem(
        await client.get(
            "/api/v1/oauth/othercrm/authorize",
            headers=owner.headers,
            params={"account_id": account_id},
        ),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "provider_mismatch",
    )
    await problem(
        await client.get(
            "/api/v1/oauth/crm/authorize", headers=owner.headers, params={"account_id": "nope"}
        ),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )
    assert await _pending_count(client) == 0


async def test_a_token_the_auth_script_refuses_creates_nothing(
    client: Client, owner: Caller, provider: FakeProvider
) -> None:
    refuse = "auth.authenticationFailed('This login may not read the CRM ({api}).');"
    await create_oauth_connector(client, owner, provider, auth_script=refuse)
    callback = await consent(await authorize(client, owner))
    body = await problem(
        await client.get(callback, headers=JSON),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "credentials_rejected",
    )
    assert body["detail"] == f"This login may not read the CRM ({provider.url})."
    assert await _account_count(client) == 0


@pytest.mark.parametrize(
    ("auth_script", "code", "detail"),
    [
        (
            "httprequest.get('http://api.example.com/me'); auth.authenticationSuccess();",
            "egress_refused",
            "host api.example.com is not in the connector's allowed_hosts",
        ),
        ("throw new Error('no CRM at {api}');", "script_failed", "Error: no CRM at "),
    ],
)
async def test_an_auth_script_that_fails_is_not_a_rejection_and_creates_nothing(
    client: Client,
    owner: Caller,
    provider: FakeProvider,
    auth_script: str,
    code: str,
    detail: str,
) -> None:
    await create_oauth_connector(client, owner, provider, auth_script=auth_script)
    callback = await consent(await authorize(client, owner))
    body = await problem(
        await client.get(callback, headers=JSON), HTTPStatus.UNPROCESSABLE_ENTITY, code
    )
    assert body["detail"].startswith(detail)
    await client.app[RUNS].flush_runs()
    async with client.app[ENGINE].connect() as connection:
        check = (await connection.execute(select(runs).where(runs.c.id == body["run_id"]))).one()
    assert (check.kind, check.status) == ("auth", "error")
    assert await _account_count(client) == 0
    # The browser gets the page that says the same; the run is counted in the metrics.
    page = await client.get(await consent(await authorize(client, owner)))
    assert page.status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert detail.replace("'", "&#x27;") in await page.text()
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_runs_total{kind="auth",status="error"} 2.0' in metrics


async def test_an_auth_script_that_cannot_reach_its_upstream_is_502_and_creates_nothing(
    client: Client, owner: Caller, provider: FakeProvider
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = f"httprequest.get('http://127.0.0.1:{port}/me'); auth.authenticationSuccess();"
    created = await create_oauth_connector(client, owner, provider, auth_script=script)
    patched = await client.patch(
        f"/api/v1/connectors/{created['guid']}",
        headers=owner.headers,
        json={"allowed_hosts": ["127.0.0.1"]},
    )
    assert patched.status == HTTPStatus.OK, await patched.text()
    callback = await consent(await authorize(client, owner))
    body = await problem(
        await client.get(callback, headers=JSON), HTTPStatus.BAD_GATEWAY, "upstream_unavailable"
    )
    assert body["detail"].startswith(f"cannot connect to host 127.0.0.1:{port}")
    assert body["run_id"]
    page = await client.get(await consent(await authorize(client, owner)))
    assert page.status == HTTPStatus.BAD_GATEWAY
    assert await _account_count(client) == 0


# --- O3: the callback refuses what it cannot trust ---------------------------------------


async def _state_of(location: str) -> str:
    return URL(location).query["state"]


async def test_o3_missing_forged_and_replayed_states_are_refused(
    client: Client, owner: Caller, crm: dict[str, Any], provider: FakeProvider
) -> None:
    callback = await consent(await authorize(client, owner))
    code = URL(callback).query["code"]
    missing = await problem(
        await client.get("/api/v1/oauth/callback", headers=JSON, params={"code": code}),
        HTTPStatus.BAD_REQUEST,
        "bad_request",
    )
    assert "no state" in missing["detail"]
    forged = await problem(
        await client.get(
            "/api/v1/oauth/callback", headers=JSON, params={"code": code, "state": "forged"}
        ),
        HTTPStatus.BAD_REQUEST,
        "bad_request",
    )
    assert "unknown or was used" in forged["detail"]
    assert provider.requests["authorization_code"] == 0
    assert (await client.get(callback, headers=JSON)).status == HTTPStatus.CREATED
    replayed = await client.get(callback, headers=JSON)
    await problem(replayed, HTTPStatus.BAD_REQUEST, "bad_request")
    # The replay was refused before the provider was asked, and created nothing.
    assert provider.requests["authorization_code"] == 1
    assert await _account_count(client) == 1
    # The browser gets the same refusal as a page.
    page = await client.get(callback)
    assert page.status == HTTPStatus.BAD_REQUEST
    assert page.content_type == "text/html"
    assert "unknown or was used" in await page.text()


async def test_o3_two_callbacks_racing_with_one_state_use_it_once(
    client: Client, owner: Caller, crm: dict[str, Any], provider: FakeProvider
) -> None:
    callback = await consent(await authorize(client, owner))
    answers = await asyncio.gather(*(client.get(callback, headers=JSON) for _ in range(4)))
    assert sorted(a.status for a in answers) == [201, 400, 400, 400]
    assert provider.requests["authorization_code"] == 1
    assert await _account_count(client) == 1


async def test_o3_an_expired_state_is_refused(
    client: Client, owner: Caller, crm: dict[str, Any], provider: FakeProvider
) -> None:
    callback = await consent(await authorize(client, owner))
    async with client.app[ENGINE].begin() as connection:
        await connection.execute(
            update(oauth_states).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    body = await problem(
        await client.get(callback, headers=JSON), HTTPStatus.BAD_REQUEST, "bad_request"
    )
    assert "expired" in body["detail"]
    assert provider.requests["authorization_code"] == 0
    assert (await _account_count(client), await _pending_count(client)) == (0, 0)


async def test_o3_a_code_issued_for_another_pkce_verifier_is_refused(
    client: Client, owner: Caller, crm: dict[str, Any], provider: FakeProvider
) -> None:
    state = await _state_of(await authorize(client, owner))
    # A code the attacker obtained with a verifier of their own, for our redirect URI.
    code = provider.issue_code(REDIRECT_URI, new_code_verifier())
    body = await problem(
        await client.get(
            "/api/v1/oauth/callback", headers=JSON, params={"state": state, "code": code}
        ),
        HTTPStatus.BAD_REQUEST,
        "bad_request",
    )
    assert "invalid_grant" in body["detail"]
    assert provider.requests["authorization_code"] == 1
    assert (await _account_count(client), await _pending_count(client)) == (0, 0)


async def test_o3_a_missing_code_and_provider_errors_are_refused(
    client: Client, owner: Caller, crm: dict[str, Any], provider: FakeProvider
) -> None:
    state = await _state_of(await authorize(client, owner))
    body = await problem(
        await client.get("/api/v1/oauth/callback", headers=JSON, params={"state": state}),
        HTTPStatus.BAD_REQUEST,
        "bad_request",
    )
    assert "no authorization code" in body["detail"]

    provider.deny = "access_denied"
    callback = await consent(await authorize(client, owner))
    assert "code" not in URL(callback).query
    page = await client.get(callback)
    assert page.status == HTTPStatus.BAD_REQUEST
    assert "did not authorise the gateway (access_denied)" in await page.text()

    # Only a well-formed error code is shown, never the text an attacker put in the URL.
    state = await _state_of(await authorize(client, owner))
    body = await problem(
        await client.get(
            "/api/v1/oauth/callback",
            headers=JSON,
            params={
                "state": state,
                "error": "<script>alert(1)</script>",
                "error_description": "Call +1 555 0100 now",
            },
        ),
        HTTPStatus.BAD_REQUEST,
        "bad_request",
    )
    assert body["detail"] == "the provider did not authorise the gateway (an unrecognised error)"
    assert provider.requests["authorization_code"] == 0
    assert (await _account_count(client), await _pending_count(client)) == (0, 0)


async def test_s1_no_token_or_client_secret_in_any_response(
    client: Client, owner: Caller, crm: dict[str, Any], provider: FakeProvider, recorder: Recorder
) -> None:
    account_id = (await connect(client, owner))["account_id"]
    await client.get(f"/api/v1/accounts/{account_id}", headers=owner.headers)
    await client.get(f"/api/v1/connectors/{crm['guid']}", headers=owner.headers)
    await connect(client, owner, account_id=account_id)
    await client.get("/api/v1/runs", headers=owner.headers)
    captured = recorder.text()
    assert len(recorder.responses) >= 8
    secrets = [CLIENT_SECRET]
    for family in provider.families:
        secrets += [family.access_token, family.refresh_token]
    assert [s for s in secrets if s in captured] == []


async def test_a_token_endpoint_outage_is_502_and_creates_nothing(
    client: Client, owner: Caller, crm: dict[str, Any], provider: FakeProvider
) -> None:
    callback = await consent(await authorize(client, owner))
    provider.outage = Outage(503, "7")
    response = await client.get(callback, headers=JSON)
    body = await problem(response, HTTPStatus.BAD_GATEWAY, "upstream_unavailable")
    assert response.headers["Retry-After"] == "7"
    assert "token endpoint is unavailable" in body["detail"]
    # The state was used: the browser starts again; its page says what happened.
    callback = await consent(await authorize(client, owner))
    page = await client.get(callback)
    assert page.status == HTTPStatus.BAD_GATEWAY
    assert page.content_type == "text/html"
    assert "unavailable" in await page.text()
    assert (await _account_count(client), await _pending_count(client)) == (0, 0)
