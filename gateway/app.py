"""The application factory: wiring only, no I/O until the app starts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib import resources

import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from actions.idempotency import IdempotencyKeys
from actions.service import ActionService
from gateway.accounts.service import AccountService, AccountsForRuns
from gateway.accounts.vault import SecretVault
from gateway.apps.service import AppService
from gateway.apps.sessions import AppSessions
from gateway.auth import authenticate
from gateway.connectors.runs import RunService, run_writer
from gateway.connectors.service import ConnectorService
from gateway.connectors.state import ScriptStates
from gateway.crypto import KEY_FILE_NAME, load_keyring
from gateway.datasets.sandbox import sandbox_for
from gateway.egress import AddressPolicy, EgressClient
from gateway.identity.service import IdentityService
from gateway.keys import (
    ACCOUNTS,
    ACTIONS,
    APP_SESSIONS,
    APPS,
    CLOCK,
    CONNECTORS,
    DATASETS,
    EGRESS,
    ENGINE,
    IDENTITY,
    INSTANCE_ORIGINS,
    JOB_RUNNER,
    JOBS,
    METRICS,
    OAUTH_CLIENTS,
    OAUTH_FLOW,
    OPENAPI,
    POOL,
    REFRESH,
    RUNS,
    SCHEDULES,
    SETTINGS,
    VAULT,
)
from gateway.metrics import Metrics
from gateway.middlewares import problems, request_context
from gateway.oauth import RefreshCoordinator, TokenEndpoint
from gateway.oauth.clients import ClientConfigs
from gateway.oauth.flow import OAuthFlow, callback_url
from gateway.oauth.session import OAuthForRuns
from gateway.origin import instance_origin, instance_origin_headers
from gateway.routes import register_routes
from gateway.settings import Settings
from gateway.store.batching import BatchLimits
from gateway.store.engine import close_engine, create_engine, database_url_for
from gateway.store.generations import Generations
from gateway.store.migrate import upgrade
from gateway.store.tables import utcnow
from runtime.pool import PoolConfig, WorkerPool
from writeback.datasets.service import DatasetService
from writeback.datasets.storage import DatasetFiles
from writeback.jobs.execute import JobExecutor
from writeback.jobs.models import Clock
from writeback.jobs.policy import RetryPolicy
from writeback.jobs.queue import JobQueue
from writeback.jobs.runner import JobRunner, RunnerLimits
from writeback.jobs.schedules import Scheduler, ScheduleService
from writeback.jobs.service import JobService
from writeback.jobs.sink import sweep_spools
from writeback.scriptsql import ConnectorSql

MAX_BODY_BYTES = 16 * 1024 * 1024

log = structlog.get_logger(__name__)


def create_app(settings: Settings) -> web.Application:
    """Build the gateway application for `settings`."""
    app = web.Application(
        # Order matters: the request context (id, log line, metrics) wraps everything, so
        # even a problem rendered below is logged and counted with its final status; problem
        # rendering wraps authentication, so a refused token is a proper 401 problem. The
        # instance origin comes before authentication: there a session, not a bearer token,
        # says who calls, and nothing else of the gateway is reachable (decision 0018).
        middlewares=[request_context, problems, instance_origin, authenticate],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[INSTANCE_ORIGINS] = settings.instance_origins()
    app.on_response_prepare.append(instance_origin_headers)
    app.cleanup_ctx.append(_openapi_document)
    app.cleanup_ctx.append(_worker_pool)
    # The egress client comes before the store: the run service built there uses both.
    app.cleanup_ctx.append(_egress_client)
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_run_retention)
    app.cleanup_ctx.append(_datasets)
    # After everything a job uses: on shutdown the jobs in flight are released first.
    app.cleanup_ctx.append(_jobs)
    register_routes(app)
    return app


@asynccontextmanager
async def _openapi_document(app: web.Application) -> AsyncIterator[None]:
    app[OPENAPI] = (resources.files("gateway") / "openapi.yaml").read_bytes()
    yield


@asynccontextmanager
async def _worker_pool(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Workers start before any secret is decrypted: they inherit nothing but the pipe.
    pool = WorkerPool(
        PoolConfig(size=settings.workers, address_space_mb=settings.worker_address_space_mb)
    )
    await pool.start()
    app[POOL] = pool
    try:
        yield
    finally:
        await pool.close()


@asynccontextmanager
async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keyring, created = load_keyring(settings.encryption_keys, settings.data_dir)
    if created:
        log.warning(
            "encryption_key_file_created",
            path=str(settings.data_dir / KEY_FILE_NAME),
            advice="set GATEWAY_ENCRYPTION_KEYS in production: this key lives beside the data",
        )
    engine = create_engine(database_url_for(settings.database_url, settings.data_dir))
    metrics = app[METRICS]
    # One set of generations for every service: a write drops this process's caches of its
    # area at once, the poll drops those another process's writes changed (decision 0019).
    generations = Generations(
        engine,
        poll_s=settings.cache_poll_s,
        on_drop=lambda area, cause: metrics.cache_drops.labels(area, cause).inc(),
    )
    writer = run_writer(
        engine,
        limits=BatchLimits(
            batch_max=settings.run_batch_max,
            interval_s=settings.run_batch_interval_ms / 1000,
            max_pending=max(settings.run_batch_max_pending, settings.run_batch_max),
        ),
        on_batch=lambda outcome, rows: metrics.run_writes.labels(outcome).inc(rows),
    )
    coordinator: RefreshCoordinator | None = None
    try:
        await upgrade(engine)
        app[VAULT] = vault = SecretVault(keyring)
        app[ACCOUNTS] = accounts = AccountService(engine, vault, generations)
        app[APPS] = apps = AppService(engine, accounts, generations=generations)
        app[APP_SESSIONS] = AppSessions(
            engine, apps, ttl=timedelta(hours=settings.app_session_hours), generations=generations
        )
        app[ENGINE] = engine
        app[IDENTITY] = identity = IdentityService(engine, generations)
        app[CONNECTORS] = connectors = ConnectorService(
            engine, sealer=vault, generations=generations
        )
        # OAuth 2.0: token requests go through the egress client like every upstream call.
        endpoint = TokenEndpoint(app[EGRESS])
        app[REFRESH] = coordinator = RefreshCoordinator(
            engine,
            vault,
            endpoint,
            on_refresh=lambda outcome: metrics.refreshes.labels(outcome).inc(),
            generations=generations,
        )
        app[OAUTH_CLIENTS] = clients = ClientConfigs(engine, vault, generations)
        app[OAUTH_FLOW] = OAuthFlow(
            engine,
            keyring,
            clients,
            endpoint,
            connectors=connectors,
            accounts=accounts,
            identity=identity,
            redirect_uri=callback_url(settings),
        )
        app[RUNS] = runs = RunService(
            engine,
            connectors,
            app[POOL],
            app[EGRESS],
            accounts=AccountsForRuns(accounts),
            oauth=OAuthForRuns(clients, coordinator, app[EGRESS]),
            metrics=metrics,
            state=ScriptStates(engine, keyring),
            writer=writer,
            sql=ConnectorSql(engine),
        )
        app[ACTIONS] = ActionService(
            connectors.versions, apps, accounts, runs, IdempotencyKeys(engine)
        )
        await generations.start()
        writer.start()
        yield
    finally:
        # Order: the HTTP server has stopped taking requests; runs still queued are written
        # first, refreshes in flight then store their rotated tokens, the polls stop (token
        # uses are written a last time), and only then does the engine go away. The egress
        # client closes after this context, in reverse order of registration.
        await writer.close()
        if coordinator is not None:
            await coordinator.close()
        await generations.close()
        # Work cancelled by the shutdown may still be giving its connection back.
        if not await close_engine(engine):
            log.warning("database_connections_abandoned_at_shutdown")


@asynccontextmanager
async def _egress_client(app: web.Application) -> AsyncIterator[None]:
    client = egress_client_for(app[SETTINGS])
    app[EGRESS] = client
    try:
        yield
    finally:
        await client.close()


RETENTION_SWEEP_S = 6 * 3600


@asynccontextmanager
async def _run_retention(app: web.Application) -> AsyncIterator[None]:
    """Delete runs past `GATEWAY_RUN_RETENTION_DAYS`, idempotency keys past their 24 hours,
    and expired app sessions and codes: once at start, then every few hours."""
    retention = timedelta(days=app[SETTINGS].run_retention_days)

    async def purge() -> None:
        try:
            now = utcnow()
            purged = await app[RUNS].purge_runs(now - retention)
            keys = await app[ACTIONS].idempotency.purge(now)
        except SQLAlchemyError:
            log.exception("run_retention_failed")
            return
        if purged:
            log.info("runs_purged", count=purged)
        if keys:
            log.info("idempotency_keys_purged", count=keys)
        try:
            expired = await app[APP_SESSIONS].purge_expired()
        except SQLAlchemyError:
            log.exception("app_session_purge_failed")
            return
        if expired:
            log.info("app_sessions_purged", count=expired)

    async def sweep() -> None:
        while True:
            await asyncio.sleep(RETENTION_SWEEP_S)
            await purge()

    await purge()
    task = asyncio.create_task(sweep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


DATASET_SWEEP_S = 600


@asynccontextmanager
async def _datasets(app: web.Application) -> AsyncIterator[None]:
    """The dataset service, its SQL sandbox, and a sweep of files no version needs any more."""
    settings = app[SETTINGS]
    sandbox = sandbox_for(settings)
    service = DatasetService(
        app[ENGINE],
        DatasetFiles(settings.data_dir / "datasets", settings.dataset_grace_s),
        sandbox,
        max_upload_bytes=settings.dataset_max_upload_mb * 1024 * 1024,
    )
    app[DATASETS] = service
    app[RUNS].use_datasets(service)

    async def sweep() -> None:
        while True:
            try:
                await service.collect()
            except (OSError, SQLAlchemyError):
                log.exception("dataset_sweep_failed")
            await asyncio.sleep(DATASET_SWEEP_S)

    task = asyncio.create_task(sweep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sandbox.close()


@asynccontextmanager
async def _jobs(app: web.Application) -> AsyncIterator[None]:
    """The job queue, this process's job runner and scheduler (decision 0022)."""
    settings = app[SETTINGS]
    engine = app[ENGINE]
    clock = app.get(CLOCK) or Clock()
    spool_dir = settings.data_dir / "jobs"
    await asyncio.to_thread(sweep_spools, spool_dir)
    queue = JobQueue(engine, max_attempts=settings.job_max_attempts)
    executor = JobExecutor(
        engine,
        app[IDENTITY],
        app[CONNECTORS].versions,
        app[RUNS],
        app[DATASETS],
        spool_dir,
        record_run=lambda job, run: queue.record_run(job, run.id, job.attempts, clock.now()),
        clock=clock.now,
    )
    runner = JobRunner(
        queue,
        executor,
        limits=RunnerLimits(
            concurrency=settings.job_concurrency,
            per_customer=settings.job_customer_concurrency,
            lease_s=settings.job_lease_s,
            heartbeat_s=settings.job_heartbeat_s,
            poll_s=settings.job_poll_s,
        ),
        policy=RetryPolicy(base_s=settings.job_backoff_s),
        clock=clock.now,
    )
    jobs = JobService(
        queue,
        app[CONNECTORS].versions,
        app[ACCOUNTS],
        app[DATASETS],
        clock=clock.now,
        on_queued=runner.wake,
        on_cancel=runner.cancel_here,
    )
    schedules = ScheduleService(engine, jobs, queue, clock=clock.now)
    scheduler = Scheduler(schedules, settings.schedule_poll_s, runner.wake)
    app[JOBS], app[JOB_RUNNER], app[SCHEDULES] = jobs, runner, schedules
    runner.start()
    scheduler.start()
    try:
        yield
    finally:
        await scheduler.close()
        await runner.close()


def egress_client_for(settings: Settings) -> EgressClient:
    """The shared egress client under the operator's address policy."""
    policy = AddressPolicy(
        allow_private=settings.egress_allow_private,
        allowed_networks=settings.egress_allowed_networks,
        resolve=settings.egress_resolve,
        connect_to=settings.egress_connect_to,
    )
    ca_file = str(settings.egress_ca_file) if settings.egress_ca_file else None
    return EgressClient(policy, ca_file=ca_file)
