"""Identity endpoints (SPEC 4.2): customers, users, API tokens, `/me`."""

from __future__ import annotations

import contextlib
from datetime import datetime
from http import HTTPStatus

from aiohttp import web
from pydantic import BaseModel, Field

from gateway.auth import principal_of
from gateway.errors import Forbidden, NotFound
from gateway.identity.principal import Role
from gateway.identity.rules import check_grants, check_lists_users, check_manages, check_not_self
from gateway.identity.service import Customer, TokenInfo, User
from gateway.keys import IDENTITY
from gateway.problems import ProblemError
from gateway.text import NAME_LENGTH, Email, Identifier, Name
from gateway.wire import ParseModel, json_model, page_parameters, parse_body


class CustomerCreate(ParseModel):
    """`POST /api/v1/customers`."""

    name: Name


class UserCreate(ParseModel):
    """`POST /api/v1/users`."""

    email: Email
    name: Name | None = Field(
        default=None, description="Defaults to the e-mail address (its first 200 characters)"
    )
    role: Role = Role.MEMBER
    customer_id: Identifier | None = Field(
        default=None, description="Defaults to the caller's; only platform admins name another"
    )

    @property
    def display_name(self) -> str:
        """`name`, else the e-mail address cut to a name's 200 characters."""
        return self.name or self.email[:NAME_LENGTH]


class UserPatch(ParseModel):
    """`PATCH /api/v1/users/{id}`: given fields replace stored ones; `{}` changes nothing."""

    name: Name | None = None
    email: Email | None = None
    role: Role | None = None


class TokenCreate(ParseModel):
    """`POST /api/v1/users/{id}/tokens`."""

    name: Name = "api"


class CustomerOut(BaseModel):
    """A customer as the API shows it."""

    id: str
    name: str
    created_at: datetime


class UserOut(BaseModel):
    """A user as the API shows it."""

    id: str
    email: str
    name: str
    role: Role
    customer_id: str
    created_at: datetime


class UserPage(BaseModel):
    """A page of users."""

    items: list[UserOut]
    next_cursor: str | None = Field(default=None)


class TokenOut(BaseModel):
    """A token without its secret."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    """A new token: the only time `token` is ever shown."""

    token: str


class TokenPage(BaseModel):
    """A page of tokens."""

    items: list[TokenOut]
    next_cursor: str | None = Field(default=None)


def _customer(customer: Customer) -> CustomerOut:
    return CustomerOut(id=customer.id, name=customer.name, created_at=customer.created_at)


def _user(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        customer_id=user.customer_id,
        created_at=user.created_at,
    )


def _token(info: TokenInfo) -> TokenOut:
    return TokenOut(
        id=info.id,
        name=info.name,
        created_at=info.created_at,
        last_used_at=info.last_used_at,
        revoked_at=info.revoked_at,
    )


async def create_customer(request: web.Request) -> web.Response:
    """Create a customer (platform admins)."""
    principal_of(request, Role.PLATFORM_ADMIN)
    body = await parse_body(request, CustomerCreate)
    customer = await request.app[IDENTITY].create_customer(body.name)
    return json_model(
        _customer(customer),
        status=HTTPStatus.CREATED,
        headers={"Location": f"/api/v1/customers/{customer.id}"},
    )


async def get_customer(request: web.Request) -> web.Response:
    """A customer: one's own, or any for a platform admin."""
    principal = principal_of(request)
    customer_id = request.match_info["id"]
    if principal.role is not Role.PLATFORM_ADMIN and customer_id != principal.customer_id:
        raise NotFound("no such customer")
    return json_model(_customer(await request.app[IDENTITY].get_customer(customer_id)))


async def create_user(request: web.Request) -> web.Response:
    """Create a user of the caller's customer (admins), or of any (platform admins)."""
    principal = principal_of(request, Role.ADMIN)
    body = await parse_body(request, UserCreate)
    customer_id = body.customer_id or principal.customer_id
    if customer_id != principal.customer_id and principal.role is not Role.PLATFORM_ADMIN:
        raise Forbidden("only platform admins create users of another customer")
    if body.role is Role.PLATFORM_ADMIN and principal.role is not Role.PLATFORM_ADMIN:
        raise Forbidden("only platform admins grant the platform_admin role")
    user = await request.app[IDENTITY].create_user(
        customer_id, body.email, body.display_name, body.role
    )
    return json_model(
        _user(user), status=HTTPStatus.CREATED, headers={"Location": f"/api/v1/users/{user.id}"}
    )


async def list_users(request: web.Request) -> web.Response:
    """A page of a customer's users (admins: their own; platform admins: `customer_id`)."""
    principal = principal_of(request)
    customer_id = request.query.get("customer_id") or principal.customer_id
    check_lists_users(principal, customer_id)
    limit, cursor = page_parameters(request)
    identity = request.app[IDENTITY]
    await identity.get_customer(customer_id)  # an unknown customer is 404, not an empty page
    items, next_cursor = await identity.list_users(customer_id, limit, cursor)
    return json_model(UserPage(items=[_user(u) for u in items], next_cursor=next_cursor))


async def get_user(request: web.Request) -> web.Response:
    """A user of the caller's customer (of any customer for a platform admin)."""
    user = await request.app[IDENTITY].find_user(principal_of(request), request.match_info["id"])
    return json_model(_user(user))


async def update_user(request: web.Request) -> web.Response:
    """Change a user: its admins change anything; a user may rename itself."""
    principal = principal_of(request)
    identity = request.app[IDENTITY]
    user = await identity.find_user(principal, request.match_info["id"])
    body = await parse_body(request, UserPatch)
    if principal.user_id != user.id or body.email is not None or body.role is not None:
        check_manages(principal, user.customer_id, user.role)
    if body.role is not None and body.role is not user.role:
        check_grants(principal, body.role)
        check_not_self(principal, user.id, "change the role of")
    changed = await identity.update_user(user, name=body.name, email=body.email, role=body.role)
    return json_model(_user(changed))


async def delete_user(request: web.Request) -> web.Response:
    """Delete a user at once (decision 0010); `connectors_to` takes over its connectors."""
    principal = principal_of(request)
    identity = request.app[IDENTITY]
    user = await identity.find_user(principal, request.match_info["id"])
    check_manages(principal, user.customer_id, user.role)
    check_not_self(principal, user.id, "delete")
    await identity.delete_user(user, await _new_connector_owner(request, user))
    return web.Response(status=HTTPStatus.NO_CONTENT)


async def _new_connector_owner(request: web.Request, user: User) -> User | None:
    new_owner = request.query.get("connectors_to")
    if new_owner is None:
        return None
    if new_owner != user.id:
        with contextlib.suppress(NotFound):
            return await request.app[IDENTITY].get_user(user.customer_id, new_owner)
    raise ProblemError(
        "validation_failed",
        "connectors_to must name another user of the same customer",
        errors=[{"loc": ["query", "connectors_to"], "msg": "no such user", "type": "user"}],
    )


async def me(request: web.Request) -> web.Response:
    """The caller."""
    principal = principal_of(request)
    user = await request.app[IDENTITY].get_user(principal.customer_id, principal.user_id)
    return json_model(_user(user))


async def _token_owner(request: web.Request) -> User:
    """The user named in the path, whose tokens the caller may manage (self or its admins)."""
    principal = principal_of(request)
    user = await request.app[IDENTITY].find_user(principal, request.match_info["id"])
    if principal.user_id != user.id:
        check_manages(principal, user.customer_id, user.role)
    return user


async def create_token(request: web.Request) -> web.Response:
    """Issue a token; the response is the only place it is ever shown."""
    user = await _token_owner(request)
    body = await parse_body(request, TokenCreate)
    info, token = await request.app[IDENTITY].issue_token(user, body.name)
    created = TokenCreated(token=token, **_token(info).model_dump())
    return json_model(
        created,
        status=HTTPStatus.CREATED,
        headers={"Location": f"/api/v1/users/{user.id}/tokens/{info.id}"},
    )


async def list_tokens(request: web.Request) -> web.Response:
    """A page of a user's tokens, without secrets."""
    user = await _token_owner(request)
    limit, cursor = page_parameters(request)
    items, next_cursor = await request.app[IDENTITY].list_tokens(user, limit, cursor)
    return json_model(TokenPage(items=[_token(i) for i in items], next_cursor=next_cursor))


async def revoke_token(request: web.Request) -> web.Response:
    """Revoke a token at once."""
    user = await _token_owner(request)
    await request.app[IDENTITY].revoke_token(user, request.match_info["token_id"])
    return web.Response(status=HTTPStatus.NO_CONTENT)


def register(app: web.Application) -> None:
    """Add the identity routes."""
    app.router.add_post("/api/v1/customers", create_customer)
    app.router.add_get("/api/v1/customers/{id}", get_customer)
    app.router.add_post("/api/v1/users", create_user)
    app.router.add_get("/api/v1/users", list_users)
    app.router.add_get("/api/v1/users/{id}", get_user)
    app.router.add_patch("/api/v1/users/{id}", update_user)
    app.router.add_delete("/api/v1/users/{id}", delete_user)
    app.router.add_get("/api/v1/me", me)
    app.router.add_post("/api/v1/users/{id}/tokens", create_token)
    app.router.add_get("/api/v1/users/{id}/tokens", list_tokens)
    app.router.add_delete("/api/v1/users/{id}/tokens/{token_id}", revoke_token)
