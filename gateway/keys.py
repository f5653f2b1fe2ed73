"""Typed keys for everything the application and a request share (no string keys)."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.service import ActionService
from gateway.accounts.service import AccountService
from gateway.accounts.vault import SecretVault
from gateway.apps.origin import InstanceOrigins
from gateway.apps.service import AppService
from gateway.apps.sessions import AppSessions
from gateway.connectors.runs import RunService
from gateway.connectors.service import ConnectorService
from gateway.egress import EgressClient
from gateway.identity.principal import Principal
from gateway.identity.service import IdentityService
from gateway.metrics import Metrics
from gateway.oauth.clients import ClientConfigs
from gateway.oauth.flow import OAuthFlow
from gateway.oauth.refresh import RefreshCoordinator
from gateway.settings import Settings
from runtime.pool import WorkerPool
from writeback.datasets.service import DatasetService
from writeback.jobs.models import Clock
from writeback.jobs.runner import JobRunner
from writeback.jobs.schedules import ScheduleService
from writeback.jobs.service import JobService

SETTINGS: Final = web.AppKey("settings", Settings)
METRICS: Final = web.AppKey("metrics", Metrics)
POOL: Final = web.AppKey("pool", WorkerPool)
EGRESS: Final = web.AppKey("egress", EgressClient)
OPENAPI: Final = web.AppKey("openapi", bytes)
ENGINE: Final = web.AppKey("engine", AsyncEngine)
IDENTITY: Final = web.AppKey("identity", IdentityService)
CONNECTORS: Final = web.AppKey("connectors", ConnectorService)
RUNS: Final = web.AppKey("runs", RunService)
VAULT: Final = web.AppKey("vault", SecretVault)
ACCOUNTS: Final = web.AppKey("accounts", AccountService)
OAUTH_CLIENTS: Final = web.AppKey("oauth_clients", ClientConfigs)
OAUTH_FLOW: Final = web.AppKey("oauth_flow", OAuthFlow)
REFRESH: Final = web.AppKey("refresh", RefreshCoordinator)
APPS: Final = web.AppKey("apps", AppService)
APP_SESSIONS: Final = web.AppKey("app_sessions", AppSessions)
INSTANCE_ORIGINS: Final = web.AppKey("instance_origins", InstanceOrigins)
ACTIONS: Final = web.AppKey("actions", ActionService)
DATASETS: Final = web.AppKey("datasets", DatasetService)
JOBS: Final = web.AppKey("jobs", JobService)
JOB_RUNNER: Final = web.AppKey("job_runner", JobRunner)
SCHEDULES: Final = web.AppKey("schedules", ScheduleService)
# The clock of jobs and schedules; set before the app starts to replace it (tests).
CLOCK: Final = web.AppKey("clock", Clock)

REQUEST_ID: Final = web.RequestKey("request_id", str)
PRINCIPAL: Final = web.RequestKey("principal", Principal)
# The app instance a request comes from: set from the session on an instance's own origin
# (SPEC 4.2); on the gateway's own origin the action endpoint reads `X-App-Instance` instead.
APP_INSTANCE: Final = web.RequestKey("app_instance", str)
