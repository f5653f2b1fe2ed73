"""Who may run an action in which scope (SPEC 5): personal < customer < global."""

from __future__ import annotations

from typing import Final

from gateway.connectors.errors import ScopeNotAllowed
from gateway.connectors.models import Scope
from gateway.connectors.records import Connector
from gateway.identity.principal import Principal

_RANK: Final = {Scope.PERSONAL: 0, Scope.CUSTOMER: 1, Scope.GLOBAL: 2}


def run_scope(principal: Principal, action: Connector, requested: Scope | None) -> Scope:
    """The scope a run of `action` by `principal` happens in: `requested`, by default the
    action's own, which it may not exceed; personal is for the owner, customer for the
    action's customer, global for anyone signed in.

    Visibility is decided before (another customer's non-global action is not found).

    Raises:
        ScopeNotAllowed: the scope exceeds the action's, or does not admit the caller.
    """
    scope = requested or action.scope
    if _RANK[scope] > _RANK[action.scope]:
        raise ScopeNotAllowed(
            f"scope {scope.value!r} exceeds the action's scope {action.scope.value!r}"
        )
    if scope is Scope.PERSONAL and principal.user_id != action.owner_id:
        raise ScopeNotAllowed("only the action's owner runs it in the personal scope")
    if scope is Scope.CUSTOMER and principal.customer_id != action.customer_id:
        raise ScopeNotAllowed("the customer scope admits only the users of the action's customer")
    return scope
