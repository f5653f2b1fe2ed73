"""Job endpoints (SPEC 4.2, 4.3, 7): queue a writeback or pull job, read, cancel, its runs."""

from __future__ import annotations

import asyncio
from datetime import datetime
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel, Field

from actions.idempotency import StoredAnswer, check_key, fingerprint
from gateway.auth import principal_of
from gateway.connectors.models import MAX_LIST, Label
from gateway.errors import NotFound
from gateway.identity.principal import Principal
from gateway.keys import ACTIONS, JOBS, RUNS
from gateway.routes.runs import run_summary
from gateway.text import Identifier
from gateway.wire import ParseModel, json_model, page_parameters, parse_body
from writeback.jobs.models import NAMED_DATASET, Job, JobSpec, JobStatus, Trigger

REPLAYED_HEADER: Final = "Idempotency-Replayed"
JSON: Final = "application/json; charset=utf-8"


class JobCreate(ParseModel):
    """`POST /domo/writeback/v1/{connector_guid}/jobs`: what the job runs."""

    account_id: Identifier | None = Field(
        default=None, description="A stored account the caller may use (its own or shared)"
    )
    report: Label | None = Field(default=None, description="One of the connector's `reports`")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_LIST,
        description=(
            "Parameter values: declared ones are checked against their types, others (such"
            " as `datasetId`) reach the script unchecked"
        ),
    )
    send_to_dataset: bool | Identifier = Field(
        default=False,
        description=(
            "Pull connectors: `true` writes the datagrid to the dataset named `<connector"
            " name> - <report>` (created on the first run), a dataset id writes a new"
            " version of that dataset"
        ),
    )

    def spec(self, connector_guid: str) -> JobSpec:
        """The job this body asks for."""
        target: str | None = None
        if self.send_to_dataset is True:
            target = NAMED_DATASET
        elif isinstance(self.send_to_dataset, str):
            target = self.send_to_dataset
        return JobSpec(connector_guid, self.account_id, self.report, dict(self.parameters), target)


class ProgressOut(BaseModel):
    """What the running (or last) attempt did so far."""

    rows_read: int
    rows_written: int
    http_calls: int


class JobOut(BaseModel):
    """A job."""

    id: str
    connector_guid: str
    user_id: str
    account_id: str | None
    report: str | None
    parameters: dict[str, Any]
    send_to_dataset: bool | str
    trigger: Trigger
    schedule_id: str | None
    status: JobStatus
    attempts: int
    max_attempts: int
    cancel_requested: bool
    progress: ProgressOut
    version: int | None
    dataset_id: str | None
    error: dict[str, Any] | None
    next_attempt_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunSummaryPage(BaseModel):
    """A page of a job's runs (as `GET /api/v1/runs` lists them)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def spec_fields(spec: JobSpec) -> dict[str, Any]:
    """What a job and a schedule show of the job they run, in their wire form."""
    target = spec.send_to_dataset
    return {
        "connector_guid": spec.connector_guid,
        "account_id": spec.account_id,
        "report": spec.report,
        "parameters": spec.parameters,
        "send_to_dataset": False if target is None else True if target == NAMED_DATASET else target,
    }


def job_out(job: Job) -> JobOut:
    """The wire form of a job."""
    return JobOut(
        id=job.id,
        user_id=job.user_id,
        **spec_fields(job.spec),
        trigger=job.trigger,
        schedule_id=job.schedule_id,
        status=job.status,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        cancel_requested=job.cancel_requested,
        progress=ProgressOut(**job.progress.document()),
        version=job.version,
        dataset_id=job.dataset_id,
        error=job.error,
        next_attempt_at=job.run_after if job.status is JobStatus.QUEUED else None,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


async def create_job(request: web.Request) -> web.Response:
    """Queue a job (202); with `Idempotency-Key`, the same key answers the same job."""
    principal = principal_of(request)
    guid = request.match_info["connector_guid"]
    body = await parse_body(request, JobCreate)
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return await _queue(request, principal, body.spec(guid))
    check_key(key)
    keys = request.app[ACTIONS].idempotency
    print_ = fingerprint(request.method, request.path, request.query_string, await request.read())
    claimed = await keys.claim(principal, guid, key, print_)
    if isinstance(claimed, StoredAnswer):
        return web.Response(
            status=claimed.status,
            body=claimed.body,
            headers={"Content-Type": claimed.content_type, REPLAYED_HEADER: "true"},
        )
    try:
        response = await _queue(request, principal, body.spec(guid))
    except BaseException:
        await asyncio.shield(keys.release(claimed))
        raise
    answer = StoredAnswer(response.status, JSON, None, bytes(response.body))  # type: ignore[arg-type]
    await keys.complete(claimed, answer)
    return response


async def _queue(request: web.Request, principal: Principal, spec: JobSpec) -> web.Response:
    job = await request.app[JOBS].create(principal, spec)
    return json_model(
        job_out(job),
        status=HTTPStatus.ACCEPTED,
        headers={"Location": f"/domo/writeback/v1/jobs/{job.id}"},
    )


async def get_job(request: web.Request) -> web.Response:
    """A job: its creator's, or any of its customer's for an admin."""
    job = await request.app[JOBS].queue.get(principal_of(request), request.match_info["id"])
    return json_model(job_out(job))


async def cancel_job(request: web.Request) -> web.Response:
    """Cancel a queued job, or stop a running one (its worker is killed)."""
    job = await request.app[JOBS].cancel(principal_of(request), request.match_info["id"])
    return json_model(job_out(job))


async def job_runs(request: web.Request) -> web.Response:
    """A page of the job's runs, one per attempt, first first."""
    principal = principal_of(request)
    limit, cursor = page_parameters(request)
    run_ids, next_cursor = await request.app[JOBS].queue.run_ids(
        principal, request.match_info["id"], limit, cursor
    )
    runs = []
    for run_id in run_ids:
        try:
            runs.append(await request.app[RUNS].get_run(principal, run_id))
        except NotFound:  # its record was still unwritten when its gateway was killed
            continue
    return json_model(
        RunSummaryPage(items=[run_summary(run) for run in runs], next_cursor=next_cursor)
    )


def register(app: web.Application) -> None:
    """Add the job routes."""
    app.router.add_post("/domo/writeback/v1/{connector_guid}/jobs", create_job)
    app.router.add_get("/domo/writeback/v1/jobs/{id}", get_job)
    app.router.add_post("/domo/writeback/v1/jobs/{id}/cancel", cancel_job)
    app.router.add_get("/domo/writeback/v1/jobs/{id}/runs", job_runs)
