"""Customers, users and API tokens in the metadata store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Row, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.accounts.tables import accounts
from gateway.connectors.tables import connectors
from gateway.errors import Conflict, NotFound
from gateway.identity.principal import Principal, Role
from gateway.identity.tokens import digests_match, looks_like_token, new_token, token_digest
from gateway.store.cache import Cache
from gateway.store.generations import Area, Generations
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from gateway.store.tables import api_tokens, customers, users, utcnow

# Recording every use would make each request a write; a minute's precision is enough.
LAST_USED_PRECISION: Final = timedelta(minutes=1)
# Principals by token digest (decision 0019): revocation, role changes and deletions drop
# them at once here and at the next poll elsewhere; the age only bounds a missed bump.
PRINCIPALS_MAX: Final = 10_000
PRINCIPALS_MAX_AGE_S: Final = 60.0


@dataclass(slots=True)
class _Known:
    """A cached principal and when its token's use was last recorded (or noted to be)."""

    principal: Principal
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Customer:
    """A tenant."""

    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    """A user of one customer."""

    id: str
    customer_id: str
    email: str
    name: str
    role: Role
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token without its secret."""

    id: str
    user_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IdentityService:
    """Creates and looks up customers, users and tokens; authenticates tokens.

    Args:
        engine: the metadata store.
        generations: the process's cache generations; without them (the CLI) nothing is
            cached but every write still bumps, so serving processes hear of it.
    """

    def __init__(self, engine: AsyncEngine, generations: Generations | None = None) -> None:
        self._engine = engine
        self._generations = generations or Generations(engine)
        self._principals: Cache[str, _Known] = self._generations.cache(
            Area.IDENTITY, "principals", max_size=PRINCIPALS_MAX, max_age_s=PRINCIPALS_MAX_AGE_S
        )
        # Token uses seen on cached principals, written by the next poll (one statement).
        self._uses: dict[str, datetime] = {}
        self._generations.after_poll(self.record_uses)

    async def create_customer(self, name: str) -> Customer:
        """Create a customer.

        Raises:
            Conflict: the name is taken.
        """
        customer = Customer(new_id(), name, utcnow())
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(customers).values(
                        id=customer.id, name=customer.name, created_at=customer.created_at
                    )
                )
        except IntegrityError:
            raise Conflict(f"a customer named {name!r} exists already") from None
        return customer

    async def get_customer(self, customer_id: str) -> Customer:
        """The customer with this id.

        Raises:
            NotFound: no such customer.
        """
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(customers).where(customers.c.id == customer_id))
            ).first()
        if row is None:
            raise NotFound("no such customer")
        return Customer(row.id, row.name, row.created_at)

    async def create_user(self, customer_id: str, email: str, name: str, role: Role) -> User:
        """Create a user of `customer_id`.

        Raises:
            NotFound: no such customer.
            Conflict: the email is taken within the customer.
        """
        await self.get_customer(customer_id)
        user = User(new_id(), customer_id, email.strip().lower(), name, role, utcnow())
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(users).values(
                        id=user.id,
                        customer_id=customer_id,
                        email=user.email,
                        name=name,
                        role=role.value,
                        created_at=user.created_at,
                    )
                )
        except IntegrityError:
            raise Conflict(f"a user with email {user.email!r} exists already") from None
        return user

    async def get_user(self, customer_id: str, user_id: str) -> User:
        """A user of `customer_id` (another customer's user is not found).

        Raises:
            NotFound: no such user in this customer.
        """
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(users).where(users.c.id == user_id, users.c.customer_id == customer_id)
                )
            ).first()
        if row is None:
            raise NotFound("no such user")
        return _user(row)

    async def users_with_email(self, email: str) -> list[tuple[User, Customer]]:
        """Every user with this email and its customer (an email is unique within one)."""
        query = (
            select(
                users,
                customers.c.name.label("customer_name"),
                customers.c.created_at.label("customer_created_at"),
            )
            .join(customers, customers.c.id == users.c.customer_id)
            .where(users.c.email == email.strip().lower())
            .order_by(users.c.id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            (_user(row), Customer(row.customer_id, row.customer_name, row.customer_created_at))
            for row in rows
        ]

    async def find_user(self, principal: Principal, user_id: str) -> User:
        """A user `principal` may see: of its own customer, or of any for a platform admin.

        Raises:
            NotFound: no such user, or one of a customer the caller may not see.
        """
        query = select(users).where(users.c.id == user_id)
        if principal.role is not Role.PLATFORM_ADMIN:
            query = query.where(users.c.customer_id == principal.customer_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            raise NotFound("no such user")
        return _user(row)

    async def list_users(
        self, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[User], str | None]:
        """A page of a customer's users, oldest first."""
        query = select(users).where(users.c.customer_id == customer_id)
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(connection, query, users.c.id, limit, cursor)
        return [_user(row) for row in rows], next_cursor

    async def update_user(
        self,
        user: User,
        *,
        name: str | None = None,
        email: str | None = None,
        role: Role | None = None,
    ) -> User:
        """Change a user's name, email or role; fields left None keep their value.

        Raises:
            Conflict: the email is another user's in the customer, or the change would
                demote the last platform admin.
        """
        changed = User(
            user.id,
            user.customer_id,
            email.strip().lower() if email is not None else user.email,
            name if name is not None else user.name,
            role if role is not None else user.role,
            user.created_at,
        )
        try:
            async with self._generations.begin(Area.IDENTITY) as connection:
                if user.role is Role.PLATFORM_ADMIN and changed.role is not Role.PLATFORM_ADMIN:
                    await _keep_a_platform_admin(connection, user.id)
                await connection.execute(
                    update(users)
                    .where(users.c.id == user.id, users.c.customer_id == user.customer_id)
                    .values(email=changed.email, name=changed.name, role=changed.role.value)
                )
        except IntegrityError:
            raise Conflict(f"a user with email {changed.email!r} exists already") from None
        return changed

    async def delete_user(self, user: User, connectors_to: User | None = None) -> None:
        """Delete a user and what is only theirs (decision 0010), in one transaction.

        Its tokens, runs, account shares and pending OAuth authorisations go with it
        (cascades); the accounts it owns are deleted with their secrets (credentials are a
        person's); its connectors, which others may use, pass to `connectors_to`.

        Raises:
            Conflict: the user owns connectors and `connectors_to` is None, it is the last
                platform admin, or another object still refers to it.
        """
        # Its principal, its connectors' owner, its accounts and its mappings all change.
        try:
            async with self._generations.begin(*Area) as connection:
                if user.role is Role.PLATFORM_ADMIN:
                    await _keep_a_platform_admin(connection, user.id)
                await _hand_over_connectors(connection, user, connectors_to)
                await connection.execute(
                    delete(accounts).where(
                        accounts.c.customer_id == user.customer_id,
                        accounts.c.owner_id == user.id,
                    )
                )
                await connection.execute(
                    delete(users).where(
                        users.c.id == user.id, users.c.customer_id == user.customer_id
                    )
                )
        except IntegrityError:
            raise Conflict("other objects still refer to this user") from None

    async def issue_token(self, user: User, name: str) -> tuple[TokenInfo, str]:
        """A new token for `user`; the token itself is returned once and never stored."""
        token, digest = new_token()
        info = TokenInfo(new_id(), user.id, name, utcnow(), None, None)
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(api_tokens).values(
                    id=info.id,
                    customer_id=user.customer_id,
                    user_id=user.id,
                    name=name,
                    token_hash=digest,
                    created_at=info.created_at,
                )
            )
        return info, token

    async def list_tokens(
        self, user: User, limit: int, cursor: str | None
    ) -> tuple[list[TokenInfo], str | None]:
        """A page of `user`'s tokens, oldest first."""
        query = select(api_tokens).where(
            api_tokens.c.customer_id == user.customer_id, api_tokens.c.user_id == user.id
        )
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(connection, query, api_tokens.c.id, limit, cursor)
        items = [
            TokenInfo(r.id, r.user_id, r.name, r.created_at, r.last_used_at, r.revoked_at)
            for r in rows
        ]
        return items, next_cursor

    async def revoke_token(self, user: User, token_id: str) -> None:
        """Revoke one of `user`'s tokens (revoking twice is harmless).

        Raises:
            NotFound: `user` has no such token.
        """
        async with self._generations.begin(Area.IDENTITY) as connection:
            found = (
                await connection.execute(
                    select(api_tokens.c.id).where(
                        api_tokens.c.id == token_id,
                        api_tokens.c.user_id == user.id,
                        api_tokens.c.customer_id == user.customer_id,
                    )
                )
            ).first()
            if found is None:
                raise NotFound("no such token")
            await connection.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )

    async def authenticate(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked token, or None.

        Principals are cached by token digest (a token that does not authenticate is not);
        a use on a cached principal is recorded by the next poll, at most once a minute.
        """
        if not looks_like_token(token):
            return None
        digest = token_digest(token)
        found = self._principals.peek(digest)
        if found is not None:
            self._note_use(found[0])
            return found[0].principal
        epoch = self._principals.epoch
        loaded = await self._load_principal(token, digest)
        if loaded is None:
            return None
        self._principals.put(digest, loaded, epoch)
        return loaded.principal

    async def _load_principal(self, token: str, digest: str) -> _Known | None:
        query = (
            select(
                api_tokens.c.id,
                api_tokens.c.token_hash,
                api_tokens.c.last_used_at,
                users.c.id.label("user_id"),
                users.c.customer_id,
                users.c.role,
            )
            .join(
                users,
                and_(
                    users.c.id == api_tokens.c.user_id,
                    users.c.customer_id == api_tokens.c.customer_id,
                ),
            )
            .where(api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None))
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        # The lookup is by digest; the comparison is repeated in constant time anyway.
        if row is None or not digests_match(row.token_hash, token):
            return None
        now, last_used = utcnow(), row.last_used_at
        if last_used is None or now - last_used > LAST_USED_PRECISION:
            # This request went to the store anyway; the write costs no extra request.
            async with self._engine.begin() as connection:
                await connection.execute(
                    update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now)
                )
            last_used = now
        principal = Principal(row.user_id, row.customer_id, Role(row.role), token_id=row.id)
        return _Known(principal, last_used)

    def _note_use(self, known: _Known) -> None:
        now = utcnow()
        if known.last_used_at is None or now - known.last_used_at > LAST_USED_PRECISION:
            known.last_used_at = now
            if known.principal.token_id is not None:
                self._uses[known.principal.token_id] = now

    async def record_uses(self) -> None:
        """Write the token uses noted on cached principals since the last call, in one go.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the store failed (the uses are noted again).
        """
        if not self._uses:
            return
        uses, self._uses = self._uses, {}
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    update(api_tokens)
                    .where(api_tokens.c.id == bindparam("token_id"))
                    .values(last_used_at=bindparam("used_at")),
                    [{"token_id": key, "used_at": at} for key, at in uses.items()],
                )
        except BaseException:
            self._uses = {**uses, **self._uses}
            raise

    async def bootstrap(self, customer_name: str, email: str) -> tuple[User, str]:
        """Create the first customer, its platform admin and a token; only once.

        Raises:
            Conflict: a platform admin exists already.
        """
        async with self._engine.connect() as connection:
            existing = (
                await connection.execute(
                    select(users.c.id).where(users.c.role == Role.PLATFORM_ADMIN.value).limit(1)
                )
            ).first()
        if existing is not None:
            raise Conflict(
                "the gateway is bootstrapped already: a platform admin exists; print a new "
                "token for a user with `gateway admin token --email EMAIL`"
            )
        customer = await self.create_customer(customer_name)
        admin = await self.create_user(customer.id, email, email, Role.PLATFORM_ADMIN)
        _, token = await self.issue_token(admin, "bootstrap")
        return admin, token


def _user(row: Row[*tuple[Any, ...]]) -> User:
    return User(row.id, row.customer_id, row.email, row.name, Role(row.role), row.created_at)


async def _keep_a_platform_admin(connection: AsyncConnection, user_id: str) -> None:
    """Refuse to remove `user_id` from the platform admins when it is the last one."""
    # Every platform admin row is locked, in one order, so that two admins removing each
    # other cannot both succeed on PostgreSQL (SQLite's BEGIN IMMEDIATE serialises anyway).
    query = (
        select(users.c.id)
        .where(users.c.role == Role.PLATFORM_ADMIN.value)
        .order_by(users.c.id)
        .with_for_update()
    )
    remaining = [row.id for row in await connection.execute(query) if row.id != user_id]
    if not remaining:
        raise Conflict("this is the last platform admin: make another one first")


async def _hand_over_connectors(
    connection: AsyncConnection, user: User, connectors_to: User | None
) -> None:
    owned = (
        await connection.execute(
            select(func.count())
            .select_from(connectors)
            .where(connectors.c.customer_id == user.customer_id, connectors.c.owner_id == user.id)
        )
    ).scalar_one()
    if not owned:
        return
    if connectors_to is None:
        raise Conflict(
            f"the user owns {owned} connector(s): name their new owner with connectors_to"
        )
    await connection.execute(
        update(connectors)
        .where(connectors.c.customer_id == user.customer_id, connectors.c.owner_id == user.id)
        .values(owner_id=connectors_to.id, updated_at=utcnow())
    )
