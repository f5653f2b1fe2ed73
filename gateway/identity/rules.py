"""Who may see and manage which user (SPEC 4.2, decision 0010); pure checks, no I/O."""

from __future__ import annotations

from gateway.errors import Forbidden, NotFound
from gateway.identity.principal import Principal, Role


def may_see_customer(principal: Principal, customer_id: str) -> bool:
    """Everyone sees its own customer; platform admins see every customer."""
    return principal.customer_id == customer_id or principal.role is Role.PLATFORM_ADMIN


def check_lists_users(principal: Principal, customer_id: str) -> None:
    """A customer admin lists its own customer's users; a platform admin any customer's.

    Raises:
        NotFound: the customer is another one the caller may not see (never 403, I2).
        Forbidden: the caller is a member.
    """
    if not may_see_customer(principal, customer_id):
        raise NotFound("no such customer")
    if not principal.role.includes(Role.ADMIN):
        raise Forbidden("listing users needs the admin role")


def check_manages(principal: Principal, user_customer_id: str, user_role: Role) -> None:
    """The caller may change another user, its tokens, or delete it.

    Customer admins manage their own customer's users, platform admins those of every
    customer; nobody manages a user whose role is above its own (a customer admin cannot
    issue a token for a platform admin of its customer).

    Raises:
        NotFound: the user is another customer's and the caller is no platform admin.
        Forbidden: the caller's role does not allow it.
    """
    if not may_see_customer(principal, user_customer_id):
        raise NotFound("no such user")
    if not principal.role.includes(Role.ADMIN):
        raise Forbidden("only the user and its customer's admins manage it")
    if not principal.role.includes(user_role):
        raise Forbidden(f"only platform admins manage a {user_role.value}")


def check_grants(principal: Principal, role: Role) -> None:
    """The caller may give `role` to a user.

    Raises:
        Forbidden: only platform admins grant `platform_admin`.
    """
    if not principal.role.includes(role):
        raise Forbidden(f"only platform admins grant the {role.value} role")


def check_not_self(principal: Principal, user_id: str, what: str) -> None:
    """Nobody deletes or demotes itself: another admin must, so no customer is left headless.

    Raises:
        Forbidden: `user_id` is the caller.
    """
    if principal.user_id == user_id:
        raise Forbidden(f"you cannot {what} yourself; ask another admin")
