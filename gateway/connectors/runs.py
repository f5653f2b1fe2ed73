"""Development runs of a connector's scripts, and the stored runs (SPEC 4.2, 4.3)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

import structlog
from sqlalchemy import Row, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from gateway.accessline import add_to_line
from gateway.accounts.fields import check_credentials, field_specs
from gateway.connectors.errors import AccountsUnavailable, Invalid, InvalidParameters, field_error
from gateway.connectors.models import (
    ConnectorKind,
    ConnectorLimits,
    OAuth2Auth,
    ParameterType,
    RunCreate,
    Scope,
    ScriptKind,
    parameter_errors,
)
from gateway.connectors.records import Connector
from gateway.connectors.service import AccountSource, ConnectorService
from gateway.connectors.state import RunOnlyState, ScriptStates
from gateway.connectors.tables import runs
from gateway.connectors.versions import Runnable
from gateway.egress import EgressClient
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.identity.principal import Principal
from gateway.metrics import Metrics
from gateway.oauth.refresh import ACCESS_FIELD, REFRESH_FIELD
from gateway.oauth.session import OAuthForRuns, OAuthGrant
from gateway.store.batching import BatchWriter
from gateway.store.ids import new_id
from gateway.store.paging import paginate
from gateway.store.tables import utcnow
from runtime.host import (
    Host,
    HttpRequest,
    HttpResponse,
    HttpService,
    RowSink,
    SqlStore,
    StateStore,
)
from runtime.model import JsonValue, Limits, Metadata, RunMode, RunRequest, RunResult, RunStatus
from runtime.pool import WorkerPool
from writeback.datasets.service import DatasetService
from writeback.s3 import S3Objects
from writeback.scriptdata import CustomerDatasets, ScriptDatasets
from writeback.scriptsql import ConnectorSql

log = structlog.get_logger(__name__)

# SPEC 3.1: a development run has 30 s and 10,000 HTTP calls unless the connector says more.
DEV_RUN_LIMITS: Final = Limits(wall_time_s=30.0, http_calls=10_000)
# An action has 30 s, 100 HTTP calls and 10,000 result rows unless the connector says more.
ACTION_RUN_LIMITS: Final = Limits(wall_time_s=30.0, http_calls=100, result_rows=10_000)
# A job has 15 minutes and 10,000 HTTP calls, and streams its rows (no cap; SPEC 3.1).
JOB_RUN_LIMITS: Final = Limits(wall_time_s=900.0, http_calls=10_000, result_rows=None)
DEV_RUN: Final = "dev"
ACTION_RUN: Final = "action"
JOB_RUN: Final = "job"
AUTH_CHECK: Final = "auth"


@dataclass(frozen=True, slots=True)
class StoredRun:
    """A run as recorded: who ran what, how the account was chosen, and the result."""

    id: str
    customer_id: str
    user_id: str
    connector_id: str
    connector_guid: str
    kind: str
    mode: RunMode
    result: RunResult
    account_resolution: dict[str, JsonValue]
    created_at: datetime
    version: int | None = None
    """The published version the run used; None for a run of the draft (SPEC 4.3)."""
    scope: Scope | None = None
    """The scope an action ran in; None for other runs."""
    timings: dict[str, float] | None = None
    """An action's `resolution_ms` (action, scope, account, refresh) and `run_ms` (queue and
    script); None for other runs."""
    cut_off_host: str | None = None
    """The host whose answer the run was still waiting for when its deadline ended it (a
    time-out of the upstream rather than of the script); known only to the caller of the
    run, not stored."""

    @property
    def status(self) -> RunStatus:
        """How the run ended."""
        return self.result.status


@dataclass(frozen=True, slots=True)
class JobAttempt:
    """One attempt of a job, as the job runner hands it to `RunService.run_job`."""

    job_id: str
    attempt: int
    account_id: str | None
    report: str | None
    parameters: dict[str, JsonValue]
    rows: RowSink
    """Where the datagrid's rows go while the script runs."""
    on_response: Callable[[HttpResponse], None]
    """Called with every upstream answer (progress, and a 429's `Retry-After`)."""


@dataclass(frozen=True, slots=True)
class _Account:
    fields: dict[str, JsonValue]
    secrets: tuple[str, ...]
    resolution: dict[str, JsonValue]
    oauth: OAuthGrant | None = None


class RunService:
    """Runs a connector's scripts for its developer and keeps the runs for their retention.

    A run's account comes from `credentials` in the request (checked against the connector's
    account fields, never stored) or from a stored account through the `AccountSource`.
    With `oauth`, a stored OAuth 2.0 account's access token is refreshed before the run when
    it expires within the margin, and once after an upstream 401 (SPEC 6); the connector's
    client secret is `metadata.account.clientSecret` (SPEC 3.2), redacted like every secret.
    Runs are stored through `writer` (group commit, decision 0019) when one is given and
    started: reads here see this process's runs that are not committed yet.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        connectors: ConnectorService,
        pool: WorkerPool,
        egress: EgressClient,
        *,
        accounts: AccountSource | None = None,
        oauth: OAuthForRuns | None = None,
        metrics: Metrics | None = None,
        state: ScriptStates | None = None,
        writer: BatchWriter[StoredRun] | None = None,
        sql: ConnectorSql | None = None,
    ) -> None:
        self._engine = engine
        self._writer = writer or run_writer(engine)
        self._sql = sql
        self._metrics = metrics
        self._state = state
        self._connectors = connectors
        self._pool = pool
        self._egress = egress
        self._accounts = accounts
        self._oauth = oauth
        self._datasets: DatasetService | None = None

    def use_accounts(self, accounts: AccountSource) -> None:
        """Resolve `account_id` through `accounts` from now on."""
        self._accounts = accounts

    def use_datasets(self, datasets: DatasetService) -> None:
        """Let runs read their customer's datasets (`DOMO.queryData`) from now on."""
        self._datasets = datasets

    def use_oauth(self, oauth: OAuthForRuns) -> None:
        """Refresh OAuth 2.0 accounts' tokens through `oauth` from now on."""
        self._oauth = oauth

    async def run(self, principal: Principal, guid: str, body: RunCreate) -> StoredRun:
        """Run one of the connector's scripts (its draft) and store the run.

        Raises:
            NotFound: no such connector for this caller (or the account is unknown).
            Forbidden: the caller does not own the connector (drafts run for their owner).
            Conflict: the script to run has not been uploaded.
            Invalid: the report, discovery parameter or credentials do not fit the connector.
            InvalidParameters: the parameter values do not fit the declared parameters.
            AccountNeedsReauth: the OAuth 2.0 account must be authorised again (O4).
            RefreshUnavailable: its token expired and cannot be refreshed now.
            runtime.pool.PoolBusy: too many runs are waiting.
        """
        kind, param = _script_for(body)
        connector, source = await self._connectors.load_for_run(principal, guid, kind, param)
        if principal.user_id != connector.owner_id:
            raise Forbidden("only the connector's owner runs its draft")
        _check_request(connector, body)
        account = await self._account(
            principal, connector, body.account_id, credentials=body.credentials
        )
        if source is None:
            target = f"discovery script for {param!r}" if param else f"{kind.value} script"
            raise Conflict(f"upload the connector's {target} first")
        return await self._execute(
            principal,
            connector,
            source,
            DEV_RUN,
            body.mode,
            account,
            parameters=dict(body.parameters),
            report=body.report,
        )

    async def run_action(
        self,
        principal: Principal,
        runnable: Runnable,
        *,
        account_id: str | None,
        resolution: dict[str, JsonValue],
        parameters: dict[str, JsonValue],
        scope: Scope,
        started: float,
    ) -> StoredRun:
        """Run an action's process script as resolved by the action service, and store it.

        The account (when `account_id` is given) passes the rules of a dev run's account:
        the caller's own or shared with it, of the connector's key, not `needs_reauth`, and
        an OAuth 2.0 token refreshed first when it expires soon. `started` is the
        `time.perf_counter()` at which the request's resolution began (for the timings).

        Raises:
            Conflict: what is run has no process script.
            NotFound, AccountNotAccessible, ProviderMismatch: as `AccountSource` says.
            AccountNeedsReauth: the OAuth 2.0 account must be authorised again.
            RefreshUnavailable: its token expired and cannot be refreshed now.
            runtime.pool.PoolBusy: too many runs are waiting.
        """
        connector = runnable.connector
        if runnable.source is None:
            what = "its draft" if runnable.version is None else f"version {runnable.version}"
            raise Conflict(f"the action has no process script in {what}")
        account = await self._account(principal, connector, account_id, resolution=resolution)
        return await self._execute(
            principal,
            connector,
            runnable.source,
            ACTION_RUN,
            RunMode.PROCESS,
            account,
            parameters=parameters,
            limits=run_limits(connector, ACTION_RUN_LIMITS),
            version=runnable.version,
            scope=scope,
            started=started,
        )

    async def run_job(
        self,
        principal: Principal,
        runnable: Runnable,
        job: JobAttempt,
    ) -> StoredRun:
        """Run one attempt of a job with the job creator's rights, and store it (kind `job`).

        The account passes the rules of a dev run's account (as `run_action` says). The
        datagrid's rows go to `job.rows` in chunks as the script makes them; every upstream
        answer is shown to `job.on_response` (progress, `Retry-After`).

        Raises:
            Conflict: what is run has no process script.
            NotFound, AccountNotAccessible, ProviderMismatch: as `AccountSource` says.
            AccountNeedsReauth: the OAuth 2.0 account must be authorised again.
            RefreshUnavailable: its token expired and cannot be refreshed now.
            runtime.pool.PoolBusy: too many runs are waiting.
        """
        connector = runnable.connector
        if runnable.source is None:
            what = "its draft" if runnable.version is None else f"version {runnable.version}"
            raise Conflict(f"the connector has no process script in {what}")
        account = await self._account(principal, connector, job.account_id)
        return await self._execute(
            principal,
            connector,
            runnable.source,
            JOB_RUN,
            RunMode.PROCESS,
            account,
            parameters=job.parameters,
            report=job.report,
            limits=run_limits(connector, JOB_RUN_LIMITS),
            version=runnable.version,
            job=job,
        )

    async def check_credentials(
        self, principal: Principal, connector: Connector, credentials: dict[str, str]
    ) -> StoredRun:
        """Run the connector's auth script on credentials an account is being created with.

        Any user of the customer may do this (it is how accounts are made), unlike a dev run.

        Raises:
            Conflict: the connector has no auth script yet.
            runtime.pool.PoolBusy: too many runs are waiting.
        """
        _, source = await self._connectors.load_for_run(
            principal, connector.guid, ScriptKind.AUTH, ""
        )
        if source is None:
            raise Conflict("the connector has no auth script yet")
        specs = field_specs(connector.auth.method, connector.account_fields)
        settings, hidden = await self._connector_fields(connector)
        account = _Account(
            {**settings, **credentials},
            (*hidden, *(v for k, v in credentials.items() if specs[k].secret and v)),
            {"source": "new_account"},
        )
        return await self._execute(principal, connector, source, AUTH_CHECK, RunMode.AUTH, account)

    async def _execute(
        self,
        principal: Principal,
        connector: Connector,
        source: str,
        kind: str,
        mode: RunMode,
        account: _Account,
        *,
        parameters: dict[str, JsonValue] | None = None,
        report: str | None = None,
        limits: Limits | None = None,
        version: int | None = None,
        scope: Scope | None = None,
        started: float | None = None,
        job: JobAttempt | None = None,
    ) -> StoredRun:
        request = RunRequest(
            script=source,
            mode=mode,
            metadata=Metadata(
                account=account.fields,
                parameters=parameters or {},
                report=report,
                job_id=job.job_id if job is not None else None,
                attempt=job.attempt if job is not None else None,
            ),
            limits=limits or run_limits(connector),
            secrets=account.secrets,
            tenant=principal.customer_id,
        )
        http = _Watched(
            self._http(connector, account), job.on_response if job is not None else None
        )
        created_at = utcnow()
        state = self._state_of(principal, connector, account)
        ready = time.perf_counter()
        async with self._script_data(principal) as datasets:
            host = Host(
                http=http,
                state=state,
                datasets=datasets,
                sql=self._sql_of(principal, connector),
                aws=S3Objects(http),
                rows=job.rows if job is not None else None,
            )
            result = await self._pool.run(request, host)
        timings = None
        if started is not None:
            timings = {
                "resolution_ms": _ms(ready - started),
                "run_ms": _ms(time.perf_counter() - ready),
            }
        stored = StoredRun(
            id=new_id(),
            customer_id=principal.customer_id,
            user_id=principal.user_id,
            connector_id=connector.id,
            connector_guid=connector.guid,
            kind=kind,
            mode=mode,
            result=result,
            account_resolution=account.resolution,
            created_at=created_at,
            version=version,
            scope=scope,
            timings=timings,
            cut_off_host=http.cut_off_host if result.status is RunStatus.TIMEOUT else None,
        )
        await self._store(stored)
        if self._metrics is not None:
            # Every run of the service passes here: dev runs, account checks, OAuth callbacks.
            self._metrics.observe_run(kind, result.status.value, result.duration_ms / 1000)
        _log_run(stored, result)
        return stored

    def _state_of(
        self, principal: Principal, connector: Connector, account: _Account
    ) -> StateStore | None:
        """`DOMO.getState/setState`: the account's, the connector's without an account, and
        for credentials that are not stored (SPEC 4.3), the run's alone (decision 0011)."""
        if self._state is None:
            return None
        source = account.resolution.get("source")
        if source == "account":
            account_id = str(account.resolution["account_id"])
            return self._state.for_run(principal.customer_id, connector.id, account_id)
        if source == "none":
            return self._state.for_run(principal.customer_id, connector.id, None)
        return RunOnlyState()

    def _sql_of(self, principal: Principal, connector: Connector) -> SqlStore | None:
        """`sql.*`: the tables of a writeback or pull connector (decision 0023)."""
        if self._sql is None or connector.kind is ConnectorKind.ACTION:
            return None
        return self._sql.for_run(principal.customer_id, connector.id)

    def _script_data(
        self, principal: Principal
    ) -> AbstractAsyncContextManager[ScriptDatasets | None]:
        """The run's datasets: those of its customer, pinned for the run (decision 0023)."""
        if self._datasets is None:
            return nullcontext()
        catalog = CustomerDatasets(self._datasets, principal)
        return ScriptDatasets(catalog, self._datasets.sandbox)

    def _http(self, connector: Connector, account: _Account) -> HttpService:
        """The run's egress session; for an OAuth 2.0 account, one that replays after a 401."""
        if account.oauth is not None and self._oauth is not None:
            return self._oauth.http(account.oauth, connector.allowed_hosts, account.secrets)
        return self._egress.session(connector.allowed_hosts, secrets=account.secrets)

    async def _connector_fields(
        self, connector: Connector
    ) -> tuple[dict[str, JsonValue], tuple[str, ...]]:
        """The OAuth 2.0 client settings of `metadata.account`, and the secret among them."""
        fields = _oauth_fields(connector)
        if not fields or self._oauth is None:
            return fields, ()
        secret = await self._oauth.client_secret(connector)
        if not secret:
            return fields, ()
        return {**fields, "clientSecret": secret}, (secret,)

    async def get_run(self, principal: Principal, run_id: str) -> StoredRun:
        """A run the caller may read: its own, or any of its customer's for an admin.

        Raises:
            NotFound: no such run for this caller.
        """
        pending = self._writer.find(run_id)
        if pending is not None and _readable(principal, pending, None):
            return replace(pending, cut_off_host=None)  # as it will read once stored
        query = select(runs).where(runs.c.id == run_id, runs.c.customer_id == principal.customer_id)
        if not principal.is_admin_of(principal.customer_id):
            query = query.where(runs.c.user_id == principal.user_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            raise NotFound("no such run")
        return _stored_run(row)

    async def list_runs(
        self, principal: Principal, connector_guid: str | None, limit: int, cursor: str | None
    ) -> tuple[list[StoredRun], str | None]:
        """A page of the runs the caller may read, newest first, optionally of one connector.

        This process's runs that are not committed yet are merged in by id.
        """
        query = select(runs).where(runs.c.customer_id == principal.customer_id)
        if not principal.is_admin_of(principal.customer_id):
            query = query.where(runs.c.user_id == principal.user_id)
        if connector_guid is not None:
            query = query.where(runs.c.connector_guid == connector_guid)
        async with self._engine.connect() as connection:
            rows, next_cursor = await paginate(
                connection, query, runs.c.id, limit, cursor, descending=True
            )
        stored = [_stored_run(row) for row in rows]
        pending = [
            replace(run, cut_off_host=None)
            for run in self._writer.pending()
            if _readable(principal, run, connector_guid) and (cursor is None or run.id < cursor)
        ]
        if not pending:
            return stored, next_cursor
        return _merge_page(stored, pending, limit, more=next_cursor is not None)

    async def flush_runs(self) -> None:
        """Write the runs that wait for the group commit now, retrying a failing store until
        it works (for code that reads the `runs` table itself)."""
        await self._writer.flush()

    async def purge_runs(self, older_than: datetime) -> int:
        """Delete the runs made before `older_than` (retention); return how many."""
        async with self._engine.begin() as connection:
            deleted = await connection.execute(delete(runs).where(runs.c.created_at < older_than))
        return deleted.rowcount

    async def _store(self, run: StoredRun) -> None:
        await self._writer.submit(run.id, run)

    async def _account(
        self,
        principal: Principal,
        connector: Connector,
        account_id: str | None,
        *,
        credentials: Mapping[str, JsonValue] | None = None,
        resolution: dict[str, JsonValue] | None = None,
    ) -> _Account:
        """`metadata.account` of a run, its secrets, and how it was chosen (`resolution`,
        by default what the arguments say): `credentials` sent with a dev run, a stored
        account (its OAuth 2.0 token refreshed when it expires soon), or none."""
        if credentials is not None:
            specs = field_specs(connector.auth.method, connector.account_fields)
            fields: dict[str, JsonValue] = dict(credentials)
            secrets = tuple(v for k, v in credentials.items() if specs[k].secret and v)
            resolution = resolution or {"source": "credentials"}
        elif account_id is not None:
            if self._accounts is None:
                raise AccountsUnavailable(
                    "accounts are not available yet: send credentials instead",
                    [field_error(["account_id"], "accounts are not available yet", "unavailable")],
                )
            fields, secrets = await self._accounts.metadata_for_run(
                principal, connector, account_id
            )
            resolution = resolution or {"source": "account", "account_id": account_id}
            if self._oauth is not None and isinstance(connector.auth, OAuth2Auth):
                grant = await self._oauth.grant(principal.customer_id, account_id, connector)
                # The script gets a fresh access token; the refresh token stays in the
                # gateway (a script that refreshed by itself would rotate it behind our back).
                fields = {k: v for k, v in fields.items() if k != REFRESH_FIELD}
                fields[ACCESS_FIELD] = grant.access_token
                settings = _oauth_fields(connector)
                hidden: tuple[str, ...] = (grant.access_token,)
                if grant.config.client_secret:
                    settings["clientSecret"] = grant.config.client_secret
                    hidden += (grant.config.client_secret,)
                return _Account({**settings, **fields}, (*secrets, *hidden), resolution, grant)
        else:
            fields, secrets = {}, ()
            resolution = resolution or {"source": "none"}
        settings, hidden = await self._connector_fields(connector)
        return _Account({**settings, **fields}, (*secrets, *hidden), resolution)


class _Watched:
    """A run's `HttpService` that notes which host a request cut off by the deadline awaited,
    and shows every answer to a job's observer."""

    def __init__(
        self, inner: HttpService, on_response: Callable[[HttpResponse], None] | None = None
    ) -> None:
        self._inner = inner
        self._on_response = on_response
        self.cut_off_host: str | None = None

    async def send(self, request: HttpRequest, *, max_body_bytes: int) -> HttpResponse:
        """Send through the run's egress session.

        Raises:
            HostCallError: as the egress session does.
        """
        try:
            response = await self._inner.send(request, max_body_bytes=max_body_bytes)
        except asyncio.CancelledError:
            # The run's deadline cancels the host call it is waiting in.
            self.cut_off_host = _host_of(request.url)
            raise
        if self._on_response is not None:
            self._on_response(response)
        return response


def _host_of(url: str) -> str:
    try:
        return URL(url).host or "?"
    except ValueError:
        return "?"


def _log_run(run: StoredRun, result: RunResult) -> None:
    """The run's fields on its request's access line, else a `run_finished` line of its own."""
    fields = {
        "run_id": run.id,
        "run_kind": run.kind,
        "run_mode": run.mode.value,
        "connector_guid": run.connector_guid,
        "run_status": result.status.value,
        "run_ms": result.duration_ms,
    }
    if not add_to_line(**fields):
        log.info("run_finished", **fields)


def run_limits(connector: Connector, defaults: Limits = DEV_RUN_LIMITS) -> Limits:
    """The connector's limits over the defaults of the kind of run (development by default)."""
    return _merged_limits(connector.limits, defaults)


@functools.lru_cache(maxsize=1024)
def _merged_limits(overrides: ConnectorLimits, defaults: Limits) -> Limits:
    # Both are frozen (hashable) and so is the answer: one validation per distinct pair, not
    # one per run (a version's limits never change; an edited draft is a new pair).
    values = {**defaults.model_dump(), **overrides.model_dump(exclude_none=True)}
    return Limits.model_validate(values)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _script_for(body: RunCreate) -> tuple[ScriptKind, str]:
    if body.mode is RunMode.DISCOVERY:
        return ScriptKind.DISCOVERY, body.parameter or ""
    return ScriptKind(body.mode.value), ""


def _check_request(connector: Connector, body: RunCreate) -> None:
    """Check the report, the discovery parameter, the parameter values and the credentials.

    Raises:
        Invalid: the report or the discovery parameter is not declared, or the credentials
            have undeclared fields or miss required ones.
        InvalidParameters: the parameter values do not fit.
    """
    if body.report is not None and body.report not in connector.reports:
        message = f"the connector declares no report named {body.report!r}"
        raise Invalid(message, [field_error(["report"], message, "unknown")])
    if body.parameter is not None:
        declared = connector.parameter(body.parameter)
        if declared is None or declared.type is not ParameterType.DISCOVERY:
            message = f"the connector declares no discovery parameter named {body.parameter!r}"
            raise Invalid(message, [field_error(["parameter"], message, "unknown")])
    errors = parameter_errors(
        connector.parameters, body.parameters, complete=body.mode is RunMode.PROCESS
    )
    if errors:
        raise InvalidParameters("the parameters do not fit the connector's parameters", errors)
    if body.credentials is not None:
        check_credentials(connector.auth.method, connector.account_fields, body.credentials)


def _oauth_fields(connector: Connector) -> dict[str, JsonValue]:
    """What `metadata.account` shows of an OAuth 2.0 connector's own settings (SPEC 3.2)."""
    auth = connector.auth
    if not isinstance(auth, OAuth2Auth):
        return {}
    return {
        "clientKey": auth.client_id,
        "authorizationURL": auth.authorization_url,
        "accessTokenURL": auth.token_url,
        "scope": " ".join(auth.scopes),
    }


def run_writer(engine: AsyncEngine, **options: Any) -> BatchWriter[StoredRun]:
    """The group-commit writer of the `runs` table (start it to batch; see `BatchWriter`)."""
    return BatchWriter(engine, runs, run_values, **options)


def run_values(run: StoredRun) -> dict[str, Any]:
    """The `runs` row of a run."""
    return {
        "id": run.id,
        "customer_id": run.customer_id,
        "user_id": run.user_id,
        "connector_id": run.connector_id,
        "connector_guid": run.connector_guid,
        "kind": run.kind,
        "mode": run.mode.value,
        "status": run.status.value,
        "result": run.result.model_dump(mode="json"),
        "account_resolution": run.account_resolution,
        "version": run.version,
        "scope": run.scope.value if run.scope is not None else None,
        "timings": run.timings,
        "created_at": run.created_at,
        "duration_ms": run.result.duration_ms,
    }


def _readable(principal: Principal, run: StoredRun, connector_guid: str | None) -> bool:
    """`get_run`'s and `list_runs`' rule, for a run that is not in the store yet."""
    return (
        run.customer_id == principal.customer_id
        and (principal.is_admin_of(principal.customer_id) or run.user_id == principal.user_id)
        and connector_guid in (None, run.connector_guid)
    )


def _merge_page(
    stored: Iterable[StoredRun], pending: Iterable[StoredRun], limit: int, *, more: bool
) -> tuple[list[StoredRun], str | None]:
    """One page, newest first, of stored runs and pending ones (a run may be in both while
    its batch commits); the cursor is the page's last id when anything may follow it."""
    merged = sorted({run.id: run for run in (*stored, *pending)}.values(), key=lambda r: r.id)
    merged.reverse()
    page = merged[:limit]
    if more or len(merged) > limit:
        return page, page[-1].id
    return page, None


def _stored_run(row: Row[*tuple[Any, ...]]) -> StoredRun:
    return StoredRun(
        id=row.id,
        customer_id=row.customer_id,
        user_id=row.user_id,
        connector_id=row.connector_id,
        connector_guid=row.connector_guid,
        kind=row.kind,
        mode=RunMode(row.mode),
        result=RunResult.model_validate(row.result),
        account_resolution=row.account_resolution,
        created_at=row.created_at,
        version=row.version,
        scope=Scope(row.scope) if row.scope is not None else None,
        timings=row.timings,
    )
