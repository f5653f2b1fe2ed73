"""The metadata schema: one `MetaData`, SQLAlchemy Core tables, shared column conventions.

Conventions every table follows (SQLite and PostgreSQL alike; see
docs/decisions/0005-metadata-store.md):

- **Ids.** `id` is the primary key: a UUIDv7 string made in Python (`ids.new_id`, column
  default), `String(36)`. Text order is creation order, so lists are `ORDER BY id` and a
  keyset cursor is the last id (`gateway.store.paging.paginate`). Public identifiers that are
  not the primary key (a connector's `guid`) are UUIDs too, but a column of their own.
- **Tenancy.** A tenant-owned table has `customer_id` (not null, FK to `customers`) and a
  `UNIQUE (customer_id, id)`. That constraint is both the index for "this customer's rows in
  id order" and the target of composite foreign keys: a child references its parent with
  `(customer_id, parent_id) -> parent (customer_id, id)`, so a row can never point into
  another customer (an account shared with a user of another customer is unrepresentable).
- **Time.** Every timestamp is `UTCDateTime`: timezone-aware UTC in Python, rejected when
  naive. "Now" always comes from Python (`utcnow`), never from SQL (`CURRENT_TIMESTAMP`
  differs between backends); SQLite stores fixed-width UTC text, so comparisons with bound
  datetimes order correctly there too. `created_at` is set on insert, nullable `*_at`
  columns record events (`revoked_at`, `last_used_at`).
- **Enumerations** are `String(n)` plus a named CHECK listing the values, not native enums
  (no `ALTER TYPE` migrations; the Python side uses a `StrEnum` with the same values).
- **Secrets** are never stored in plain text: API tokens as a SHA-256 hex digest
  (`token_hash`, unique, looked up by hash); encrypted fields as `LargeBinary` ciphertext
  next to a `key_id` column naming the encryption key, so rotation can find stale rows.
- **Optimistic concurrency and leases.** A row that is updated concurrently (accounts) has
  `version INTEGER NOT NULL DEFAULT 1`; updates are compare-and-swap,
  `UPDATE ... SET version = version + 1 WHERE id = :id AND version = :seen`, and one row
  changed means the write won. A lease is a pair of nullable columns `<what>_lease_owner`
  (a `new_id()` per holder) and `<what>_lease_expires_at`, taken with the same kind of
  conditional UPDATE (free or expired), never with `SELECT ... FOR UPDATE`, which SQLite lacks.
- **Documents** (parameters, manifests, run logs) are `JSON`; anything filtered or joined on
  is a real column.
- **Names.** Tables are plural snake case; constraints and indexes are named by
  `NAMING_CONVENTION`, so migrations can refer to them on both backends.
- **Deletes.** Parents are protected (`ON DELETE RESTRICT`, the default); rows that only make
  sense with their parent (a user's tokens) use `ON DELETE CASCADE`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
)

from gateway.store.ids import new_id

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata: Final = MetaData(naming_convention=NAMING_CONVENTION)

ID_LENGTH: Final = 36
USER_ROLES: Final = ("member", "admin", "platform_admin")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC: the only clock the store writes."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so values are converted to UTC
    before they are written and marked UTC when read back.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC.

        Raises:
            ValueError: `value` is naive (its time zone would be a guess).
        """
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given for a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Mark a value read back as UTC (SQLite returns naive datetimes)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def id_column() -> Column[str]:
    """The primary key: a UUIDv7 string made in Python."""
    return Column("id", String(ID_LENGTH), primary_key=True, default=new_id)


def created_at_column() -> Column[datetime]:
    """When the row was inserted, set by Python."""
    return Column("created_at", UTCDateTime(), nullable=False, default=utcnow)


def customer_id_column() -> Column[str]:
    """The owning customer of a tenant-owned row."""
    return Column("customer_id", String(ID_LENGTH), ForeignKey("customers.id"), nullable=False)


def _in(column: str, values: tuple[str, ...]) -> str:
    """A CHECK expression allowing exactly `values` in `column`."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


customers: Final = Table(
    "customers",
    metadata,
    id_column(),
    Column("name", String(200), nullable=False),
    created_at_column(),
    UniqueConstraint("name"),
)

users: Final = Table(
    "users",
    metadata,
    id_column(),
    customer_id_column(),
    # Stored as given; the identity service normalises (lower-cases) emails before writing.
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    created_at_column(),
    UniqueConstraint("customer_id", "id"),
    UniqueConstraint("customer_id", "email"),
    CheckConstraint(_in("role", USER_ROLES), name="role"),
)

api_tokens: Final = Table(
    "api_tokens",
    metadata,
    id_column(),
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("name", String(200), nullable=False),
    # SHA-256 of the token, hex: the token itself is shown once and never stored.
    Column("token_hash", String(64), nullable=False),
    created_at_column(),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    UniqueConstraint("token_hash"),
    UniqueConstraint("customer_id", "id"),
    # The token's customer is its user's customer, enforced by the database.
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
    Index(None, "customer_id", "user_id"),
)

STATE_KEY_LENGTH: Final = 256

# `DOMO.getState/setState` of the service's runs (SPEC 3.2; gateway.connectors.state).
script_state: Final = Table(
    "script_state",
    metadata,
    id_column(),
    # The customer whose run wrote it: runs of another customer's copy of a global connector
    # keep their own rows, so the connector is referenced by id alone.
    customer_id_column(),
    Column("connector_id", String(ID_LENGTH), nullable=False),
    # The run's account, or '' for a run without one (a NULL would not be unique).
    Column("account_ref", String(ID_LENGTH), nullable=False),
    Column("account_id", String(ID_LENGTH), nullable=True),
    Column("name", String(STATE_KEY_LENGTH), nullable=False),
    # The JSON of the value, sealed, bound to customer, connector, account and name (key).
    Column("key_id", String(32), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    # Bytes of the name and the JSON value: what counts against the cap, without opening.
    Column("size", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("customer_id", "connector_id", "account_ref", "name"),
    ForeignKeyConstraint(["connector_id"], ["connectors.id"], ondelete="CASCADE"),
    ForeignKeyConstraint(
        ["customer_id", "account_id"],
        ["accounts.customer_id", "accounts.id"],
        ondelete="CASCADE",
    ),
)

# The caches' invalidation counters (gateway.store.generations, decision 0019): one row per
# cache area, bumped in the transaction of every write that changes a cached fact and polled
# by every process. Not tenant data (no customer_id): an area's caches hold every tenant's
# entries, and a per-tenant row would make each process's poll grow with the tenants.
cache_generations: Final = Table(
    "cache_generations",
    metadata,
    Column("area", String(32), primary_key=True),
    Column("generation", Integer, nullable=False),
)
