"""Sessions on app instances' own origins, and the one-time secrets that open them.

A signed-in user opens an instance on the gateway's origin (bearer token, or a one-time
launch link issued to it); that yields a one-time code for the instance origin, which
exchanges it for a session bound to (user, instance). Links, codes and sessions are random
secrets of which only the SHA-256 is stored; links and codes are deleted by their first use
(a compare-and-swap, as OAuth states are). `resolve` is the lookup every request on an
instance origin makes: one indexed query, its live sessions cached (decision 0019) under the
`apps` area (session revocation, instances) and the `identity` area (the session's token,
its user's role), so a revocation holds here at once and elsewhere after one poll.
Decision 0018 says why a session dies with its user, instance and token.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Row, and_, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.apps.service import AppService
from gateway.apps.tables import app_codes, app_instances, app_sessions
from gateway.errors import NotFound, Unauthenticated
from gateway.identity.principal import Principal, Role
from gateway.identity.tokens import token_digest
from gateway.store.cache import Cache
from gateway.store.generations import Area, Generations
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from gateway.store.tables import api_tokens, users, utcnow

LINK_TTL: Final = timedelta(seconds=60)
# The code travels in one redirect the browser follows at once.
CODE_TTL: Final = timedelta(seconds=60)
SESSION_PREFIX: Final = "rs_"
_SECRET_BYTES: Final = 32
_MAX_SECRET_LENGTH: Final = 128
_UNKNOWN_LINK: Final = "the launch link is unknown, expired or used already: ask for a new one"
# Live sessions by (instance, digest); the digest determines the customer (decision 0019).
SESSIONS_MAX: Final = 10_000
SESSIONS_MAX_AGE_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class AppSession:
    """A live session: who it acts for on which instance, and the app it serves."""

    id: str
    principal: Principal
    app_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as its user sees it (never its secret)."""

    id: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Opened:
    """A new session: its secret (shown once, to the browser) and what it is."""

    secret: str
    session: AppSession


@dataclass(frozen=True, slots=True)
class _Holder:
    """Whom a link or code acts for: a user, and the API token that signed it in."""

    customer_id: str
    user_id: str
    token_id: str

    @classmethod
    def of(cls, principal: Principal) -> _Holder:
        """The holder for a caller signed in with a token.

        Raises:
            Unauthenticated: the caller has no API token (sessions die with their token).
        """
        if principal.token_id is None:
            raise Unauthenticated("open apps with an API token")
        return cls(principal.customer_id, principal.user_id, principal.token_id)


class InvalidLaunchLink(NotFound):
    """A launch link that cannot be used: unknown, forged, used or expired (a 404, as for
    OAuth links: it names something that does not exist any more)."""


def new_session_secret() -> str:
    """A fresh session id: 256 random bits, recognisable by its prefix."""
    return SESSION_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def looks_like_session(value: str) -> bool:
    """Cheap shape check before touching the database."""
    return value.startswith(SESSION_PREFIX) and len(value) <= _MAX_SECRET_LENGTH


class AppSessions:
    """Launch links, exchange codes and sessions of app instances.

    Args:
        engine: the metadata store.
        apps: finds the caller's instances.
        ttl: how long a session lasts (never extended).
        clock: "now" (tests move it).
        generations: the process's cache generations (none: nothing cached, writes bump).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        apps: AppService,
        *,
        ttl: timedelta,
        clock: Callable[[], datetime] = utcnow,
        generations: Generations | None = None,
    ) -> None:
        self._engine = engine
        self._apps = apps
        self.ttl = ttl
        self.clock = clock
        self._generations = generations or Generations(engine)
        self._live: Cache[tuple[str, str], AppSession] = self._generations.cache(
            Area.APPS,
            "app_sessions",
            max_size=SESSIONS_MAX,
            max_age_s=SESSIONS_MAX_AGE_S,
            also=(Area.IDENTITY,),
        )

    async def issue_link(self, principal: Principal, app_id: str, instance_id: str) -> str:
        """A one-time launch secret for the instance, acting for `principal` for 60 s.

        Raises:
            NotFound: no such instance of this app in the caller's customer.
            Unauthenticated: the caller signed in without an API token.
        """
        await self._apps.instance(principal, app_id, instance_id)
        return await self._store_code(_Holder.of(principal), instance_id, "launch", LINK_TTL)

    async def open(self, principal: Principal, instance_id: str) -> str:
        """A one-time exchange code for the instance origin, acting for `principal`.

        Raises:
            NotFound: no such instance in the caller's customer.
            Unauthenticated: the caller signed in without an API token.
        """
        await self._apps.find_instance(principal, instance_id)
        return await self._store_code(_Holder.of(principal), instance_id, "exchange", CODE_TTL)

    async def open_from_link(self, instance_id: str, link: str) -> str:
        """Use a launch secret once: the exchange code it leads to.

        Raises:
            InvalidLaunchLink: unknown, used, expired, or for another instance.
        """
        row = await self._take(link, "launch", instance_id)
        if row is None:
            raise InvalidLaunchLink(_UNKNOWN_LINK)
        holder = _Holder(row.customer_id, row.user_id, row.token_id)
        return await self._store_code(holder, instance_id, "exchange", CODE_TTL)

    async def exchange(self, instance_id: str, code: str) -> Opened | None:
        """Use an exchange code once on its instance's origin: a new session, or None when
        the code is unknown, used, expired or another instance's, or its user or token is
        gone."""
        row = await self._take(code, "exchange", instance_id)
        if row is None:
            return None
        secret = new_session_secret()
        now = self.clock()
        async with self._engine.begin() as connection:
            await connection.execute(delete(app_sessions).where(app_sessions.c.expires_at <= now))
            await connection.execute(
                insert(app_sessions).values(
                    id=new_id(),
                    customer_id=row.customer_id,
                    instance_id=instance_id,
                    user_id=row.user_id,
                    token_id=row.token_id,
                    session_hash=token_digest(secret),
                    expires_at=now + self.ttl,
                    created_at=now,
                )
            )
        session = await self.resolve(instance_id, secret)
        return None if session is None else Opened(secret, session)

    async def resolve(self, instance_id: str, secret: str) -> AppSession | None:
        """The live session `secret` names on this instance, with its user's current role.

        None for an unknown, expired or revoked session, another instance's, or one whose
        API token was revoked. A live session is cached (never a miss: an attacker's guesses
        would evict real sessions); its expiry is checked on every use.
        """
        if not looks_like_session(secret):
            return None
        key = (instance_id, token_digest(secret))
        cached = self._live.peek(key)
        if cached is not None and cached[0].expires_at > self.clock():
            return cached[0]
        epoch = self._live.epoch
        session = await self._load(instance_id, key[1])
        if session is not None:
            self._live.put(key, session, epoch)
        return session

    async def _load(self, instance_id: str, digest: str) -> AppSession | None:
        """The live session of this digest on this instance: one query on the unique index."""
        query = (
            select(
                app_sessions.c.id,
                app_sessions.c.customer_id,
                app_sessions.c.user_id,
                app_sessions.c.token_id,
                app_sessions.c.expires_at,
                users.c.role,
                app_instances.c.app_id,
            )
            .join(
                users,
                and_(
                    users.c.customer_id == app_sessions.c.customer_id,
                    users.c.id == app_sessions.c.user_id,
                ),
            )
            .join(
                api_tokens,
                and_(
                    api_tokens.c.customer_id == app_sessions.c.customer_id,
                    api_tokens.c.id == app_sessions.c.token_id,
                ),
            )
            .join(
                app_instances,
                and_(
                    app_instances.c.customer_id == app_sessions.c.customer_id,
                    app_instances.c.id == app_sessions.c.instance_id,
                ),
            )
            .where(
                app_sessions.c.session_hash == digest,
                app_sessions.c.instance_id == instance_id,
                app_sessions.c.expires_at > self.clock(),
                api_tokens.c.revoked_at.is_(None),
            )
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        principal = Principal(
            row.user_id,
            row.customer_id,
            Role(row.role),
            token_id=row.token_id,
            app_instance_id=instance_id,
        )
        return AppSession(row.id, principal, row.app_id, row.expires_at)

    async def sessions(
        self,
        principal: Principal,
        app_id: str,
        instance_id: str,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[SessionInfo], str | None]:
        """The caller's live sessions on the instance, oldest first.

        Raises:
            NotFound: no such instance of this app in the caller's customer.
        """
        await self._apps.instance(principal, app_id, instance_id)
        query = (
            select(app_sessions.c.id, app_sessions.c.created_at, app_sessions.c.expires_at)
            .join(
                api_tokens,
                and_(
                    api_tokens.c.customer_id == app_sessions.c.customer_id,
                    api_tokens.c.id == app_sessions.c.token_id,
                ),
            )
            .where(
                *self._mine(principal, instance_id),
                app_sessions.c.expires_at > self.clock(),
                api_tokens.c.revoked_at.is_(None),
            )
        )
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(connection, query, app_sessions.c.id, limit, cursor)
        return [SessionInfo(*row) for row in rows], next_cursor

    async def revoke(
        self, principal: Principal, app_id: str, instance_id: str, session_id: str | None
    ) -> None:
        """End one of the caller's sessions on the instance, or all of them (None): at once
        in this process, after one poll in the others (it bumps `apps`).

        Raises:
            NotFound: no such instance of this app in the caller's customer, or the caller
                has no such session there.
        """
        await self._apps.instance(principal, app_id, instance_id)
        query = delete(app_sessions).where(*self._mine(principal, instance_id))
        if session_id is not None:
            query = query.where(app_sessions.c.id == session_id)
        async with self._generations.begin(Area.APPS) as connection:
            deleted = await connection.execute(query)
        if session_id is not None and deleted.rowcount != 1:
            raise NotFound("you have no such session on this instance")

    async def purge_expired(self) -> int:
        """Delete expired sessions, links and codes; the number of rows deleted."""
        now = self.clock()
        async with self._engine.begin() as connection:
            codes = await connection.execute(delete(app_codes).where(app_codes.c.expires_at <= now))
            sessions = await connection.execute(
                delete(app_sessions).where(app_sessions.c.expires_at <= now)
            )
        return int(codes.rowcount) + int(sessions.rowcount)

    @staticmethod
    def _mine(principal: Principal, instance_id: str) -> tuple[Any, ...]:
        return (
            app_sessions.c.customer_id == principal.customer_id,
            app_sessions.c.instance_id == instance_id,
            app_sessions.c.user_id == principal.user_id,
        )

    async def _store_code(
        self, holder: _Holder, instance_id: str, purpose: str, ttl: timedelta
    ) -> str:
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        now = self.clock()
        async with self._engine.begin() as connection:
            await connection.execute(delete(app_codes).where(app_codes.c.expires_at <= now))
            await connection.execute(
                insert(app_codes).values(
                    id=new_id(),
                    customer_id=holder.customer_id,
                    code_hash=token_digest(secret),
                    purpose=purpose,
                    instance_id=instance_id,
                    user_id=holder.user_id,
                    token_id=holder.token_id,
                    expires_at=now + ttl,
                    created_at=now,
                )
            )
        return secret

    async def _take(self, secret: str, purpose: str, instance_id: str) -> Row[Any] | None:
        """The secret's row if it is live and for this purpose and instance; deleted in the
        same transaction whatever it holds (a compare-and-swap: one use only)."""
        if len(secret) > _MAX_SECRET_LENGTH:
            return None
        async with self._engine.begin() as connection:
            row = (
                await connection.execute(
                    select(app_codes).where(app_codes.c.code_hash == token_digest(secret))
                )
            ).first()
            if row is None:
                return None
            taken = await connection.execute(delete(app_codes).where(app_codes.c.id == row.id))
            if taken.rowcount != 1:  # another request used it first
                return None
        live = row.expires_at > self.clock()
        return row if live and row.purpose == purpose and row.instance_id == instance_id else None
