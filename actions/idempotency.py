"""`Idempotency-Key` on the action endpoint: one run per key, its answer replayed 24 hours.

Per (customer, user, action guid, key), the first request inserts a claim (a pending row
held by a lease) and runs; its final answer (status, content type, run id, body) replaces
the claim. A repeat with the same fingerprint replays that answer without running; one with
another fingerprint is refused. A repeat that finds the claim pending waits for it (woken at
once in this process, polling the store for other replicas) until it is answered, released,
or its lease runs out, after which the claim is taken over: a holder that died (its lease
covers the run's deadline plus a margin) does not block the key for good. Everything is
conditional INSERT/UPDATE/DELETE, the same on SQLite and PostgreSQL (decision 0017).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.errors import IdempotencyKeyReused
from actions.tables import KEY_LENGTH, idempotency_keys
from gateway.connectors.errors import field_error
from gateway.errors import ValidationFailed
from gateway.identity.principal import Principal
from gateway.store.ids import new_id
from gateway.store.tables import utcnow

TTL: Final = timedelta(hours=24)
# A claim's first hold: the default action deadline (30 s) plus the margin; a connector
# with a longer deadline extends it before its run starts.
MARGIN_S: Final = 15.0
FIRST_HOLD_S: Final = 30.0 + MARGIN_S
# How often a waiter looks at the store for a claim held by another replica.
POLL_S: Final = 0.2

_Slot = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The final answer to the first request with a key."""

    status: int
    content_type: str
    run_id: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to run the request of a key: the row and this holder's lease."""

    id: str
    owner: str
    slot: _Slot


def check_key(key: str) -> None:
    """An `Idempotency-Key` is 1 to 255 visible ASCII characters.

    Raises:
        ValidationFailed: it is empty, longer, or holds another character.
    """
    if 1 <= len(key) <= KEY_LENGTH and all("!" <= c <= "~" for c in key):
        return
    message = f"must be 1 to {KEY_LENGTH} visible ASCII characters (no spaces)"
    raise ValidationFailed(
        f"the Idempotency-Key header {message}",
        [field_error(["header", "Idempotency-Key"], message, "idempotency_key")],
    )


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests the same request: a SHA-256 of method, path, query, body."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyKeys:
    """The claims and stored answers of idempotent action requests."""

    def __init__(
        self, engine: AsyncEngine, *, first_hold_s: float = FIRST_HOLD_S, poll_s: float = POLL_S
    ) -> None:
        self._engine = engine
        self._first_hold = timedelta(seconds=first_hold_s)
        self._poll_s = poll_s
        # Waiters of this process, woken when the claim of their slot is answered or released.
        self._settled: dict[_Slot, asyncio.Event] = {}

    async def claim(
        self, principal: Principal, guid: str, key: str, print_: str
    ) -> Claim | StoredAnswer:
        """Claim the key for this request, or the stored answer of its first request.

        Raises:
            IdempotencyKeyReused: the key answered (or is answering) another request.
        """
        slot: _Slot = (principal.customer_id, principal.user_id, guid, key)
        while True:
            claim = await self._insert(slot, print_)
            if claim is not None:
                return claim
            row = await self._row(slot)
            if row is None:
                continue  # released or purged meanwhile: try again
            now = utcnow()
            if row.created_at <= now - TTL:
                await self._drop_expired(row.id, row.created_at)
                continue
            if row.fingerprint != print_:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for another request (method, path, query "
                    "or body) in the last 24 hours; use a new key"
                )
            if row.status is not None:
                return StoredAnswer(row.status, row.content_type, row.run_id, row.body)
            if row.claim_lease_expires_at <= now:
                taken = await self._take_over(slot, row)
                if taken is not None:
                    return taken
                continue
            await self._wait(slot, (row.claim_lease_expires_at - now).total_seconds())

    async def extend(self, claim: Claim, seconds: float) -> None:
        """Hold the claim `seconds` from now (a run with a longer deadline than the first
        hold); shorter holds are left as they are."""
        until = utcnow() + timedelta(seconds=seconds)
        if until <= utcnow() + self._first_hold:
            return
        async with self._engine.begin() as connection:
            await connection.execute(
                update(idempotency_keys)
                .where(
                    idempotency_keys.c.id == claim.id,
                    idempotency_keys.c.claim_lease_owner == claim.owner,
                )
                .values(claim_lease_expires_at=until)
            )

    async def complete(self, claim: Claim, answer: StoredAnswer) -> None:
        """Store the final answer in place of the claim (unless it was taken over)."""
        async with self._engine.begin() as connection:
            await connection.execute(
                update(idempotency_keys)
                .where(
                    idempotency_keys.c.id == claim.id,
                    idempotency_keys.c.claim_lease_owner == claim.owner,
                )
                .values(
                    claim_lease_owner=None,
                    claim_lease_expires_at=None,
                    status=answer.status,
                    content_type=answer.content_type,
                    run_id=answer.run_id,
                    body=answer.body,
                )
            )
        self._settle(claim.slot)

    async def release(self, claim: Claim) -> None:
        """Give the key back: the request was refused before it ran."""
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.id == claim.id,
                    idempotency_keys.c.claim_lease_owner == claim.owner,
                )
            )
        self._settle(claim.slot)

    async def purge(self, now: datetime) -> int:
        """Delete the keys older than 24 hours at `now`; return how many."""
        async with self._engine.begin() as connection:
            deleted = await connection.execute(
                delete(idempotency_keys).where(idempotency_keys.c.created_at <= now - TTL)
            )
        return deleted.rowcount

    async def _insert(self, slot: _Slot, print_: str) -> Claim | None:
        customer_id, user_id, guid, key = slot
        claim = Claim(new_id(), new_id(), slot)
        now = utcnow()
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(idempotency_keys).values(
                        id=claim.id,
                        customer_id=customer_id,
                        user_id=user_id,
                        action_guid=guid,
                        key=key,
                        fingerprint=print_,
                        claim_lease_owner=claim.owner,
                        claim_lease_expires_at=now + self._first_hold,
                        created_at=now,
                    )
                )
        except IntegrityError:
            return None
        return claim

    async def _row(self, slot: _Slot) -> Row[Any] | None:
        customer_id, user_id, guid, key = slot
        async with self._engine.connect() as connection:
            row: Row[Any] | None = (
                await connection.execute(
                    select(idempotency_keys).where(
                        idempotency_keys.c.customer_id == customer_id,
                        idempotency_keys.c.user_id == user_id,
                        idempotency_keys.c.action_guid == guid,
                        idempotency_keys.c.key == key,
                    )
                )
            ).first()
        return row

    async def _take_over(self, slot: _Slot, row: Row[Any]) -> Claim | None:
        """Take a claim whose holder's lease ran out (compare-and-swap on the holder)."""
        claim = Claim(row.id, new_id(), slot)
        async with self._engine.begin() as connection:
            taken = await connection.execute(
                update(idempotency_keys)
                .where(
                    idempotency_keys.c.id == row.id,
                    idempotency_keys.c.claim_lease_owner == row.claim_lease_owner,
                    idempotency_keys.c.status.is_(None),
                )
                .values(
                    claim_lease_owner=claim.owner,
                    claim_lease_expires_at=utcnow() + self._first_hold,
                )
            )
        return claim if taken.rowcount == 1 else None

    async def _drop_expired(self, row_id: str, created_at: datetime) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.id == row_id,
                    idempotency_keys.c.created_at == created_at,
                )
            )

    async def _wait(self, slot: _Slot, lease_left_s: float) -> None:
        """Until this process settles the slot, the lease runs out, or it is time to poll."""
        settled = self._settled.setdefault(slot, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(settled.wait(), timeout=min(self._poll_s, lease_left_s))

    def _settle(self, slot: _Slot) -> None:
        settled = self._settled.pop(slot, None)
        if settled is not None:
            settled.set()
