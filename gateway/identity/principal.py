"""Who is calling: resolved once per request by the auth middleware."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A user's role within its customer (SPEC 2)."""

    MEMBER = "member"
    ADMIN = "admin"
    PLATFORM_ADMIN = "platform_admin"

    @property
    def rank(self) -> int:
        """Higher ranks include every right of the lower ones."""
        return _RANKS[self]

    def includes(self, other: Role) -> bool:
        """Whether this role has every right of `other`."""
        return self.rank >= other.rank


_RANKS = {Role.MEMBER: 0, Role.ADMIN: 1, Role.PLATFORM_ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    customer_id: str
    role: Role
    token_id: str | None = None
    app_instance_id: str | None = None

    def is_admin_of(self, customer_id: str) -> bool:
        """Customer admins manage their own customer; platform admins theirs too."""
        return self.customer_id == customer_id and self.role.includes(Role.ADMIN)
