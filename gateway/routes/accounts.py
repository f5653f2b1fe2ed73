"""Account endpoints (SPEC 4.2): stored credentials, validated by the connector's auth script."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from gateway.accounts.fields import MAX_VALUE_LENGTH
from gateway.accounts.service import Account, CredentialCheck, Provider
from gateway.auth import principal_of
from gateway.connectors.failures import run_failure
from gateway.connectors.models import Key, Label
from gateway.connectors.records import Connector
from gateway.connectors.runs import RunService
from gateway.errors import ProviderMismatch
from gateway.identity.principal import Principal
from gateway.keys import ACCOUNTS, CONNECTORS, OAUTH_CLIENTS, REFRESH, RUNS
from gateway.text import NO_NUL, Identifier, Name
from gateway.wire import ParseModel, json_model, page_parameters, parse_body

# Names and values are checked against the connector's fields by the service; numbers are
# taken as their text.
Credentials = Annotated[
    dict[
        Label,
        Annotated[str, StringConstraints(max_length=MAX_VALUE_LENGTH), NO_NUL] | int | float,
    ],
    Field(description="Field values by name: the auth method's fields and `account_fields`"),
]


class AccountCreate(ParseModel):
    """`POST /api/v1/accounts`."""

    connector_key: Key = Field(
        description="The connector's key (the caller's customer's, else global)"
    )
    name: Name
    credentials: Credentials


class AccountUpdate(ParseModel):
    """`PATCH /api/v1/accounts/{id}`: a new name, new credentials, or both.

    An empty object (or body) changes nothing and answers the account as it is.
    """

    name: Name | None = None
    credentials: Credentials | None = None


class ShareCreate(ParseModel):
    """`POST /api/v1/accounts/{id}/shares`."""

    user_id: Identifier


class AccountOut(BaseModel):
    """An account as the API shows it: which secrets are set, never their values."""

    id: str
    connector_key: str
    name: str
    auth_method: str
    status: str
    owner_id: str
    fields: dict[str, str]
    secret_fields: list[str]
    shared_with: list[str]
    token_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AccountPage(BaseModel):
    """A page of accounts."""

    items: list[AccountOut]
    next_cursor: str | None = Field(default=None)


def _out(account: Account) -> AccountOut:
    return AccountOut(
        id=account.id,
        connector_key=account.connector_key,
        name=account.name,
        auth_method=account.auth_method,
        status=account.status,
        owner_id=account.owner_id,
        fields=account.fields,
        secret_fields=account.secret_fields,
        shared_with=account.shared_with,
        token_expires_at=account.token_expires_at,
        created_at=account.created_at,
        updated_at=account.updated_at,
    )


def _provider(connector: Connector) -> Provider:
    return Provider(connector.key, connector.auth.method, connector.account_fields)


def _checker(request: web.Request, principal: Principal, connector: Connector) -> CredentialCheck:
    return credential_checker(request.app[RUNS], principal, connector)


def credential_checker(
    runs: RunService, principal: Principal, connector: Connector
) -> CredentialCheck:
    """Run the connector's auth script on the credentials (accounts, PATCH, OAuth callback).

    The check accepts, or raises the problem that says why not (SPEC 4.3).

    Raises:
        GatewayError: `credentials_rejected`, `upstream_unavailable`, `egress_refused` or
            `script_failed`, with the run's message and `run_id` (see `run_failure`).
    """

    async def check(values: dict[str, str]) -> tuple[bool, str | None]:
        run = await runs.check_credentials(principal, connector, values)
        failure = run_failure(run, auth_check=True)
        if failure is not None:
            raise failure
        return True, None

    return check


async def create_account(request: web.Request) -> web.Response:
    """Validate the credentials with the connector's auth script, then store them."""
    principal = principal_of(request)
    body = await parse_body(request, AccountCreate)
    connector = await request.app[CONNECTORS].get_by_key(principal, body.connector_key)
    account = await request.app[ACCOUNTS].create(
        principal,
        _provider(connector),
        body.name,
        body.credentials,
        _checker(request, principal, connector),
    )
    return json_model(
        _out(account),
        status=HTTPStatus.CREATED,
        headers={"Location": f"/api/v1/accounts/{account.id}"},
    )


async def list_accounts(request: web.Request) -> web.Response:
    """The caller's accounts and those shared with it."""
    principal = principal_of(request)
    limit, cursor = page_parameters(request)
    items, next_cursor = await request.app[ACCOUNTS].list(principal, limit, cursor)
    return json_model(AccountPage(items=[_out(a) for a in items], next_cursor=next_cursor))


async def get_account(request: web.Request) -> web.Response:
    """One account, without secrets."""
    principal = principal_of(request)
    return json_model(_out(await request.app[ACCOUNTS].get(principal, request.match_info["id"])))


async def update_account(request: web.Request) -> web.Response:
    """Rename, or replace the credentials (validated again by the auth script)."""
    principal = principal_of(request)
    body = await parse_body(request, AccountUpdate)
    accounts = request.app[ACCOUNTS]
    account_id = request.match_info["id"]
    account = await accounts.get(principal, account_id)
    if body.credentials is not None:
        connector = await request.app[CONNECTORS].get_by_key(principal, account.connector_key)
        account = await accounts.replace_credentials(
            principal,
            account_id,
            _provider(connector),
            body.credentials,
            _checker(request, principal, connector),
        )
    if body.name is not None:
        account = await accounts.rename(principal, account_id, body.name)
    return json_model(_out(account))


async def delete_account(request: web.Request) -> web.Response:
    """Delete the account and its secrets."""
    principal = principal_of(request)
    await request.app[ACCOUNTS].delete(principal, request.match_info["id"])
    return web.Response(status=HTTPStatus.NO_CONTENT)


async def share_account(request: web.Request) -> web.Response:
    """Share with a user of the same customer."""
    principal = principal_of(request)
    body = await parse_body(request, ShareCreate)
    account = await request.app[ACCOUNTS].share(principal, request.match_info["id"], body.user_id)
    return json_model(_out(account))


async def unshare_account(request: web.Request) -> web.Response:
    """Stop sharing with a user."""
    principal = principal_of(request)
    await request.app[ACCOUNTS].unshare(
        principal, request.match_info["id"], request.match_info["user_id"]
    )
    return web.Response(status=HTTPStatus.NO_CONTENT)


async def refresh_account(request: web.Request) -> web.Response:
    """Refresh an OAuth 2.0 account's access token now (its owner or an admin)."""
    principal = principal_of(request)
    accounts = request.app[ACCOUNTS]
    account_id = request.match_info["id"]
    account = await accounts.managed(principal, account_id)
    if account.auth_method != "oauth2":
        raise ProviderMismatch("only OAuth 2.0 accounts have tokens to refresh")
    connector = await request.app[CONNECTORS].get_by_key(principal, account.connector_key)
    config = await request.app[OAUTH_CLIENTS].config(connector)
    await request.app[REFRESH].refresh_now(principal.customer_id, account_id, config)
    return json_model(_out(await accounts.get(principal, account_id)))


def register(app: web.Application) -> None:
    """Add the account routes."""
    app.router.add_post("/api/v1/accounts", create_account)
    app.router.add_get("/api/v1/accounts", list_accounts)
    app.router.add_get("/api/v1/accounts/{id}", get_account)
    app.router.add_patch("/api/v1/accounts/{id}", update_account)
    app.router.add_delete("/api/v1/accounts/{id}", delete_account)
    app.router.add_post("/api/v1/accounts/{id}/shares", share_account)
    app.router.add_delete("/api/v1/accounts/{id}/shares/{user_id}", unshare_account)
    app.router.add_post("/api/v1/accounts/{id}/refresh", refresh_account)
