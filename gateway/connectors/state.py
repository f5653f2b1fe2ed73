"""`DOMO.getState/setState` of the service's runs, sealed in the metadata store (SPEC 3.2).

A run's state belongs to its connector and its stored account, or to its connector alone
when the run has no account; it lives in `script_state` rows of the run's customer, so runs
of another customer's copy of a global connector keep their own. Scripts keep tokens there,
so each value is sealed like an account's secrets, bound to customer, connector, account and
key (decision 0011). Values are JSON, as `script run --state` keeps them: a string stays a
string, a number a number; setting null (or undefined) removes the key.
"""

from __future__ import annotations

import json
from typing import Final

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from gateway.crypto import KeyRing, Sealed, associated_data
from gateway.store.ids import new_id
from gateway.store.tables import STATE_KEY_LENGTH, script_state, utcnow
from runtime.host import HostCallError
from runtime.model import JsonValue, MiB

STATE_CAP: Final = 1 * MiB
"""The most state (keys and JSON values, in bytes) one connector and account may keep."""
TABLE: Final = "script_state"


def state_aad(customer_id: str, connector_id: str, account_ref: str, key: str) -> bytes:
    """What a state value is sealed to: a ciphertext copied to another row does not open."""
    return associated_data(customer_id, TABLE, f"{connector_id}/{account_ref}", key)


def _encode(key: str, value: JsonValue, cap: int) -> bytes:
    """The value's JSON, once the key and the size are known to fit.

    Raises:
        HostCallError: `state_key_invalid` (too long) or `state_too_large` (the value alone).
    """
    if len(key) > STATE_KEY_LENGTH:
        raise HostCallError(
            "state_key_invalid", f"a state key has at most {STATE_KEY_LENGTH} characters"
        )
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    if len(key.encode()) + len(data) > cap:
        raise _too_large(len(key.encode()) + len(data), cap)
    return data


def _too_large(size: int, cap: int) -> HostCallError:
    return HostCallError(
        "state_too_large",
        f"DOMO.setState: the state of this connector and account would take {size} bytes, "
        f"more than the {cap} allowed; nothing was written",
    )


class ScriptStates:
    """Hands each run the state of its connector and account.

    Args:
        engine: the metadata store.
        keyring: seals the values.
        cap: bytes of state per connector and account.
    """

    def __init__(self, engine: AsyncEngine, keyring: KeyRing, *, cap: int = STATE_CAP) -> None:
        self._engine = engine
        self._keyring = keyring
        self._cap = cap

    def for_run(self, customer_id: str, connector_id: str, account_id: str | None) -> RunState:
        """The state a run of `customer_id` with `connector_id` and `account_id` reaches."""
        return RunState(
            self._engine, self._keyring, self._cap, (customer_id, connector_id, account_id)
        )


class RunState:
    """One run's `StateStore`: the rows of its customer, connector and account, nothing else."""

    def __init__(
        self,
        engine: AsyncEngine,
        keyring: KeyRing,
        cap: int,
        owner: tuple[str, str, str | None],
    ) -> None:
        customer_id, connector_id, account_id = owner
        self._engine = engine
        self._keyring = keyring
        self._cap = cap
        self._customer_id = customer_id
        self._connector_id = connector_id
        self._account_id = account_id
        self._ref = account_id or ""

    def _scope(self) -> ColumnElement[bool]:
        return (
            (script_state.c.customer_id == self._customer_id)
            & (script_state.c.connector_id == self._connector_id)
            & (script_state.c.account_ref == self._ref)
        )

    def _aad(self, key: str) -> bytes:
        return state_aad(self._customer_id, self._connector_id, self._ref, key)

    async def get(self, key: str) -> JsonValue:
        """The stored value, or None."""
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(script_state.c.key_id, script_state.c.ciphertext).where(
                        self._scope(), script_state.c.name == key
                    )
                )
            ).first()
        if row is None:
            return None
        plain = self._keyring.open(Sealed(row.key_id, row.ciphertext), self._aad(key))
        return json.loads(plain)

    async def set(self, key: str, value: JsonValue) -> None:
        """Store `value` under `key` (None removes it).

        Raises:
            HostCallError: `state_key_invalid`, or `state_too_large` when the state of this
                connector and account would pass the cap (nothing is written then).
        """
        if value is None:
            async with self._engine.begin() as connection:
                await connection.execute(
                    delete(script_state).where(self._scope(), script_state.c.name == key)
                )
            return
        data = _encode(key, value, self._cap)
        size = len(key.encode()) + len(data)
        sealed = self._keyring.seal(data, self._aad(key))
        async with self._engine.begin() as connection:
            used = await self._used_by_others(connection, key)
            if used + size > self._cap:
                raise _too_large(used + size, self._cap)
            await self._write(connection, key, sealed, size)

    async def _used_by_others(self, connection: AsyncConnection, key: str) -> int:
        total = await connection.execute(
            select(func.coalesce(func.sum(script_state.c.size), 0)).where(
                self._scope(), script_state.c.name != key
            )
        )
        return int(total.scalar_one())

    async def _write(
        self, connection: AsyncConnection, key: str, sealed: Sealed, size: int
    ) -> None:
        values = {
            "key_id": sealed.key_id,
            "ciphertext": sealed.blob,
            "size": size,
            "updated_at": utcnow(),
        }
        where = (self._scope(), script_state.c.name == key)
        changed = await connection.execute(update(script_state).where(*where).values(**values))
        if changed.rowcount == 1:
            return
        try:
            async with connection.begin_nested():
                await connection.execute(
                    insert(script_state).values(
                        id=new_id(),
                        customer_id=self._customer_id,
                        connector_id=self._connector_id,
                        account_ref=self._ref,
                        account_id=self._account_id,
                        name=key,
                        **values,
                    )
                )
        except IntegrityError:
            # Another run inserted the key since the update looked: overwrite its value.
            await connection.execute(update(script_state).where(*where).values(**values))


class RunOnlyState:
    """State that lasts one run: for credentials that are not a stored account (decision 0011).

    Such credentials are never stored (SPEC 4.3), so neither is what a script derives from
    them; the same key rule and cap apply, so a script behaves as it will with an account.
    """

    def __init__(self, *, cap: int = STATE_CAP) -> None:
        self._cap = cap
        self._values: dict[str, tuple[bytes, int]] = {}

    async def get(self, key: str) -> JsonValue:
        """The value set earlier in this run, or None."""
        kept = self._values.get(key)
        return None if kept is None else json.loads(kept[0])

    async def set(self, key: str, value: JsonValue) -> None:
        """Keep `value` under `key` for the rest of the run (None removes it).

        Raises:
            HostCallError: `state_key_invalid` or `state_too_large`, as for a stored state.
        """
        if value is None:
            self._values.pop(key, None)
            return
        data = _encode(key, value, self._cap)
        size = len(key.encode()) + len(data)
        used = sum(kept[1] for name, kept in self._values.items() if name != key)
        if used + size > self._cap:
            raise _too_large(used + size, self._cap)
        self._values[key] = (data, size)
