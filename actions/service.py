"""The action endpoint's work (SPEC 4.1, 5): resolve action, scope, account and parameters,
then run the process script through the run service."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from actions.idempotency import IdempotencyKeys
from actions.scopes import run_scope
from gateway.accounts.service import AccountService
from gateway.apps.errors import AliasNotMapped
from gateway.apps.service import AppService
from gateway.connectors.errors import ActionNotFound, InvalidParameters, field_error
from gateway.connectors.models import ConnectorKind, Scope, ScriptKind, parameter_errors
from gateway.connectors.records import Connector
from gateway.connectors.runs import ACTION_RUN_LIMITS, RunService, StoredRun, run_limits
from gateway.connectors.versions import Runnable, VersionService
from gateway.errors import Conflict, NotFound, ProviderMismatch, ValidationFailed
from gateway.identity.principal import Principal
from runtime.model import JsonValue, Limits

BeforeRun = Callable[[Limits], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ActionCall:
    """One call of `POST /domo/actions/v1/{guid}/process`, as the HTTP edge read it."""

    guid: str
    parameters: JsonValue
    """The request body (an empty body is `{}`); must be an object."""
    scope: Scope | None = None
    account_id: str | None = None
    alias: str | None = None
    instance_id: str | None = None
    """The calling app instance: its origin's session, or `X-App-Instance`."""


class ActionService:
    """Runs actions for their callers under the rules of SPEC 5 (decision 0017).

    Resolution order: the action (visible, `kind: action`), the scope, the account
    reference (alias through the caller's mapping in the calling instance, or an id), the
    parameters, then the account's own rules (the caller's or shared, its provider, not
    `needs_reauth`) and an OAuth refresh inside the run service, then the run.
    """

    def __init__(
        self,
        versions: VersionService,
        apps: AppService,
        accounts: AccountService,
        runs: RunService,
        idempotency: IdempotencyKeys,
    ) -> None:
        self._versions = versions
        self._apps = apps
        self._accounts = accounts
        self._runs = runs
        self.idempotency = idempotency

    async def process(
        self, principal: Principal, call: ActionCall, *, before_run: BeforeRun | None = None
    ) -> StoredRun:
        """Resolve and run the action; the stored run, whatever its status.

        `before_run` is awaited with the run's limits once every check passed, just before
        the account is opened and the script runs (the idempotency claim extends its hold).

        Raises:
            ActionNotFound: no such action for this caller.
            ScopeNotAllowed: the scope exceeds the action's or does not admit the caller.
            ValidationFailed: both `accountAlias` and `account`, or neither for an action
                that needs an account.
            AliasNotMapped: no instance for an alias, or no mapping of it there.
            NotFound: the instance or the account is not the caller's customer's.
            AccountNotAccessible: the account is neither the caller's nor shared with it.
            ProviderMismatch: the account's data provider is not the action's.
            AccountNeedsReauth: the OAuth 2.0 account must be authorised again.
            InvalidParameters: the body is not an object, or its values do not fit.
            Conflict: the action has no published version or no process script.
            runtime.pool.PoolBusy: too many runs are waiting.
        """
        started = time.perf_counter()
        runnable, scope = await self._runnable(principal, call.guid, call.scope)
        action = runnable.connector
        account_id, resolution = await self._account_reference(principal, action, call)
        parameters = _parameters(action, call.parameters)
        if before_run is not None:
            await before_run(run_limits(action, ACTION_RUN_LIMITS))
        try:
            return await self._runs.run_action(
                principal,
                runnable,
                account_id=account_id,
                resolution=resolution,
                parameters=parameters,
                scope=scope,
                started=started,
            )
        except ProviderMismatch:
            if call.alias is None or account_id is None:
                raise
            raise await self._alias_mismatch(principal, action, call.alias, account_id) from None

    async def _runnable(
        self, principal: Principal, guid: str, requested: Scope | None
    ) -> tuple[Runnable, Scope]:
        """What runs (the owner's draft in the personal scope, else the latest version)."""
        try:
            runnable = await self._versions.runnable(
                principal, guid, ScriptKind.PROCESS, scope=requested
            )
        except NotFound:
            raise ActionNotFound(f"no action {guid!r} is visible to you") from None
        except Conflict:
            # Never published: say why this caller may not run it before saying that.
            action = await self._versions.visible(principal, guid)
            run_scope(principal, _action(action), requested)
            raise
        return runnable, run_scope(principal, _action(runnable.connector), requested)

    async def _account_reference(
        self, principal: Principal, action: Connector, call: ActionCall
    ) -> tuple[str | None, dict[str, JsonValue]]:
        """The account id the run uses and how it was chosen (the run record keeps it)."""
        # The instance matters only to an alias: it is checked (and recorded) only then.
        resolution: dict[str, JsonValue] = {
            "source": "none",
            "alias": None,
            "instance_id": None,
            "account_id": None,
        }
        if call.alias is not None and call.account_id is not None:
            message = "pass accountAlias or account, not both"
            raise ValidationFailed(
                message,
                [field_error(["query", "accountAlias"], message, "ambiguous")],
            )
        if call.alias is not None:
            if call.instance_id is None:
                raise AliasNotMapped(
                    f"accountAlias {call.alias!r} needs an app instance: call from the "
                    "instance's origin, or send X-App-Instance with a bearer token"
                )
            account_id = await self._apps.mapped_account(principal, call.instance_id, call.alias)
            return account_id, {
                "source": "alias",
                "alias": call.alias,
                "instance_id": call.instance_id,
                "account_id": account_id,
            }
        if call.account_id is not None:
            account_id = call.account_id
            return account_id, {**resolution, "source": "account", "account_id": account_id}
        if action.auth.method != "none":
            message = (
                f"the action authenticates with {action.auth.method!r}: "
                "pass accountAlias or account"
            )
            raise ValidationFailed(message, [field_error(["query", "account"], message, "missing")])
        return None, resolution

    async def _alias_mismatch(
        self, principal: Principal, action: Connector, alias: str, account_id: str
    ) -> ProviderMismatch:
        account = await self._accounts.usable(principal, account_id)
        return ProviderMismatch(
            f"alias {alias!r} maps to an account of {account.connector_key!r}; "
            f"the action needs one of {action.key!r}"
        )


def _action(connector: Connector) -> Connector:
    """The connector if it is an action.

    Raises:
        ActionNotFound: it is another kind of connector.
    """
    if connector.kind is not ConnectorKind.ACTION:
        raise ActionNotFound(f"connector {connector.guid!r} is not an action")
    return connector


def _parameters(action: Connector, body: JsonValue) -> dict[str, JsonValue]:
    """The body as `metadata.parameters`: declared names checked, others passed unchecked.

    Raises:
        InvalidParameters: the body is not an object, or a declared parameter's value does
            not fit (a required one missing, a wrong type); `errors` name each.
    """
    if not isinstance(body, dict):
        message = "the body must be a JSON object of parameter values by name"
        raise InvalidParameters(message, [field_error(["body"], message, "object_type")])
    declared = {parameter.name for parameter in action.parameters}
    errors = parameter_errors(
        action.parameters, {k: v for k, v in body.items() if k in declared}, complete=True
    )
    if errors:
        names = ", ".join(f"{e['loc'][-1]!r} {e['msg']}" for e in errors)
        raise InvalidParameters(f"the parameters do not fit the action: {names}", errors)
    return body
