"""Sealing and opening an account's secret fields, and re-sealing every secret under a new key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.accounts.tables import account_secrets
from gateway.connectors.state import state_aad
from gateway.connectors.tables import connectors
from gateway.crypto import KeyRing, Sealed, associated_data
from gateway.store.tables import script_state

TABLE: Final = "account_secrets"
ROTATION_BATCH: Final = 200


def _aad(customer_id: str, account_id: str, field: str) -> bytes:
    return associated_data(customer_id, TABLE, account_id, field)


def _client_secret_aad(customer_id: str, connector_id: str) -> bytes:
    return associated_data(customer_id, "connectors", connector_id, "client_secret")


class SecretVault:
    """Secret fields of accounts: one sealed row per field, bound to customer, account, field."""

    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring

    async def store(
        self,
        connection: AsyncConnection,
        customer_id: str,
        account_id: str,
        values: Mapping[str, str],
    ) -> None:
        """Replace the account's secret fields with `values` (inside the caller's transaction)."""
        await connection.execute(
            account_secrets.delete().where(account_secrets.c.account_id == account_id)
        )
        rows = []
        for field, value in values.items():
            sealed = self._keyring.seal(value.encode(), _aad(customer_id, account_id, field))
            rows.append(
                {
                    "customer_id": customer_id,
                    "account_id": account_id,
                    "field": field,
                    "key_id": sealed.key_id,
                    "ciphertext": sealed.blob,
                }
            )
        if rows:
            await connection.execute(account_secrets.insert(), rows)

    def seal_client_secret(
        self, customer_id: str, connector_id: str, secret: str
    ) -> tuple[str, bytes]:
        """Seal a connector's OAuth client secret, bound to its customer and connector."""
        sealed = self._keyring.seal(secret.encode(), _client_secret_aad(customer_id, connector_id))
        return sealed.key_id, sealed.blob

    def open_client_secret(
        self, customer_id: str, connector_id: str, key_id: str, blob: bytes
    ) -> str:
        """Open a connector's OAuth client secret.

        Raises:
            gateway.crypto.DecryptionError: it does not belong to this connector.
        """
        aad = _client_secret_aad(customer_id, connector_id)
        return self._keyring.open(Sealed(key_id, blob), aad).decode()

    async def load(
        self, connection: AsyncConnection, customer_id: str, account_id: str
    ) -> dict[str, str]:
        """The account's secret fields, decrypted (only ever for a run or a refresh).

        Raises:
            gateway.crypto.DecryptionError: a ciphertext does not belong to this account.
        """
        rows = await connection.execute(
            select(account_secrets).where(
                account_secrets.c.account_id == account_id,
                account_secrets.c.customer_id == customer_id,
            )
        )
        return {
            row.field: self._keyring.open(
                Sealed(row.key_id, row.ciphertext), _aad(customer_id, account_id, row.field)
            ).decode()
            for row in rows
        }


@dataclass
class RotationReport:
    """What a rotation did."""

    resealed: int = 0
    skipped: int = 0


async def rotate_secrets(
    engine: AsyncEngine,
    keyring: KeyRing,
    *,
    batch: int = ROTATION_BATCH,
    after_batch: Callable[[RotationReport], Awaitable[None]] | None = None,
) -> RotationReport:
    """Re-seal every secret that is not under the newest key.

    Each batch commits on its own and each row is rewritten only if it still holds the
    ciphertext that was read (compare-and-swap), so an interrupted rotation is simply run
    again (THREATS S4) and concurrent writers are never overwritten.
    """
    report = RotationReport()
    cursor = ("", "")
    while True:
        async with engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(account_secrets)
                    .where(
                        account_secrets.c.key_id != keyring.newest_id,
                        or_(
                            account_secrets.c.account_id > cursor[0],
                            and_(
                                account_secrets.c.account_id == cursor[0],
                                account_secrets.c.field > cursor[1],
                            ),
                        ),
                    )
                    .order_by(account_secrets.c.account_id, account_secrets.c.field)
                    .limit(batch)
                )
            ).all()
            for row in rows:
                aad = _aad(row.customer_id, row.account_id, row.field)
                plaintext = keyring.open(Sealed(row.key_id, row.ciphertext), aad)
                sealed = keyring.seal(plaintext, aad)
                changed = await connection.execute(
                    update(account_secrets)
                    .where(
                        account_secrets.c.account_id == row.account_id,
                        account_secrets.c.field == row.field,
                        account_secrets.c.ciphertext == row.ciphertext,
                    )
                    .values(key_id=sealed.key_id, ciphertext=sealed.blob)
                )
                if changed.rowcount == 1:
                    report.resealed += 1
                else:
                    report.skipped += 1
        if not rows:
            break
        cursor = (rows[-1].account_id, rows[-1].field)
        if after_batch is not None:
            await after_batch(report)
    await _rotate_client_secrets(engine, keyring, report)
    await _rotate_script_state(engine, keyring, report)
    return report


async def _rotate_client_secrets(
    engine: AsyncEngine, keyring: KeyRing, report: RotationReport
) -> None:
    """The connectors' OAuth client secrets, one compare-and-swap update each."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(
                    connectors.c.id,
                    connectors.c.customer_id,
                    connectors.c.client_secret_key_id,
                    connectors.c.client_secret_ciphertext,
                ).where(
                    connectors.c.client_secret_ciphertext.is_not(None),
                    connectors.c.client_secret_key_id != keyring.newest_id,
                )
            )
        ).all()
    for row in rows:
        aad = _client_secret_aad(row.customer_id, row.id)
        plaintext = keyring.open(
            Sealed(row.client_secret_key_id, row.client_secret_ciphertext), aad
        )
        sealed = keyring.seal(plaintext, aad)
        async with engine.begin() as connection:
            changed = await connection.execute(
                update(connectors)
                .where(
                    connectors.c.id == row.id,
                    connectors.c.client_secret_ciphertext == row.client_secret_ciphertext,
                )
                .values(client_secret_key_id=sealed.key_id, client_secret_ciphertext=sealed.blob)
            )
        if changed.rowcount == 1:
            report.resealed += 1
        else:
            report.skipped += 1


async def _rotate_script_state(
    engine: AsyncEngine, keyring: KeyRing, report: RotationReport
) -> None:
    """The runs' sealed `DOMO.setState` values (up to 1 MiB each): in batches, each row
    rewritten only if it still holds what was read (compare-and-swap)."""
    after = ""
    while True:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(script_state)
                    .where(script_state.c.key_id != keyring.newest_id, script_state.c.id > after)
                    .order_by(script_state.c.id)
                    .limit(ROTATION_BATCH)
                )
            ).all()
        if not rows:
            return
        async with engine.begin() as connection:
            for row in rows:
                aad = state_aad(row.customer_id, row.connector_id, row.account_ref, row.name)
                sealed = keyring.seal(keyring.open(Sealed(row.key_id, row.ciphertext), aad), aad)
                changed = await connection.execute(
                    update(script_state)
                    .where(script_state.c.id == row.id, script_state.c.ciphertext == row.ciphertext)
                    .values(key_id=sealed.key_id, ciphertext=sealed.blob)
                )
                if changed.rowcount == 1:
                    report.resealed += 1
                else:
                    report.skipped += 1
        after = rows[-1].id
