"""The action endpoint's table: stored answers by `Idempotency-Key` (decision 0017).

The conventions of `gateway.store.tables` apply. A row is a claim while `status` is NULL
(held by `claim_lease_owner` until `claim_lease_expires_at`, after which another request may
take it over), and the final answer once `status` is set. Rows live 24 hours from
`created_at`; the run-retention sweep deletes older ones.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from gateway.store.tables import (
    ID_LENGTH,
    UTCDateTime,
    created_at_column,
    customer_id_column,
    id_column,
    metadata,
)

KEY_LENGTH: Final = 255

idempotency_keys: Final = Table(
    "idempotency_keys",
    metadata,
    id_column(),
    customer_id_column(),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("action_guid", String(ID_LENGTH), nullable=False),
    Column("key", String(KEY_LENGTH), nullable=False),
    # SHA-256 hex of the method, path, query and body of the first request with the key.
    Column("fingerprint", String(64), nullable=False),
    Column("claim_lease_owner", String(ID_LENGTH), nullable=True),
    Column("claim_lease_expires_at", UTCDateTime(), nullable=True),
    # The stored answer: NULL while the first request is still being answered.
    Column("status", Integer, nullable=True),
    Column("content_type", String(200), nullable=True),
    Column("run_id", String(ID_LENGTH), nullable=True),
    Column("body", LargeBinary, nullable=True),
    created_at_column(),
    UniqueConstraint("customer_id", "id"),
    UniqueConstraint("customer_id", "user_id", "action_guid", "key"),
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
    Index(None, "created_at"),
)
