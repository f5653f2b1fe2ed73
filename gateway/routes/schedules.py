"""Schedule endpoints (SPEC 4.2): cron schedules and dataset triggers that queue jobs."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.auth import principal_of
from gateway.keys import SCHEDULES
from gateway.routes.jobs import JobCreate, spec_fields
from gateway.text import ONE_LINE, Identifier
from gateway.wire import json_model, page_parameters, parse_body
from writeback.jobs.schedules import Schedule

CronText = Annotated[str, StringConstraints(min_length=9, max_length=200), ONE_LINE]
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64), ONE_LINE]


class ScheduleCreate(JobCreate):
    """`POST /api/v1/schedules`: when (a cron expression in a time zone, or a dataset's new
    versions) and which job (as `POST .../jobs` takes it, plus the connector)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["cron"]}, {"required": ["dataset_id"]}]}
    )

    connector_guid: Identifier
    cron: CronText | None = Field(
        default=None, description="Five cron fields (minute hour day month weekday), via croniter"
    )
    timezone: ZoneName = Field(default="UTC", description="The IANA time zone of `cron`")
    dataset_id: Identifier | None = Field(
        default=None,
        description="A dataset of the caller's customer: each new version queues a job",
    )


class ScheduleOut(BaseModel):
    """A schedule."""

    id: str
    connector_guid: str
    user_id: str
    account_id: str | None
    report: str | None
    parameters: dict[str, Any]
    send_to_dataset: bool | str
    cron: str | None
    timezone: str | None
    next_run_at: datetime | None
    dataset_id: str | None
    created_at: datetime


class SchedulePage(BaseModel):
    """A page of schedules."""

    items: list[ScheduleOut]
    next_cursor: str | None


def schedule_out(schedule: Schedule) -> ScheduleOut:
    """The wire form of a schedule."""
    return ScheduleOut(
        id=schedule.id,
        user_id=schedule.user_id,
        **spec_fields(schedule.spec),
        cron=schedule.cron,
        timezone=schedule.timezone,
        next_run_at=schedule.next_run_at,
        dataset_id=schedule.dataset_id,
        created_at=schedule.created_at,
    )


async def create_schedule(request: web.Request) -> web.Response:
    """Store a schedule (201)."""
    principal = principal_of(request)
    body = await parse_body(request, ScheduleCreate)
    schedule = await request.app[SCHEDULES].create(
        principal,
        body.spec(body.connector_guid),
        cron=body.cron,
        timezone=body.timezone,
        dataset_id=body.dataset_id,
    )
    return json_model(
        schedule_out(schedule),
        status=HTTPStatus.CREATED,
        headers={"Location": f"/api/v1/schedules/{schedule.id}"},
    )


async def list_schedules(request: web.Request) -> web.Response:
    """A page of the caller's schedules (an admin's: its customer's), oldest first."""
    limit, cursor = page_parameters(request)
    items, next_cursor = await request.app[SCHEDULES].list_schedules(
        principal_of(request), limit, cursor
    )
    return json_model(SchedulePage(items=[schedule_out(s) for s in items], next_cursor=next_cursor))


async def get_schedule(request: web.Request) -> web.Response:
    """One schedule."""
    schedule = await request.app[SCHEDULES].get(principal_of(request), request.match_info["id"])
    return json_model(schedule_out(schedule))


async def delete_schedule(request: web.Request) -> web.Response:
    """Delete a schedule (204); the jobs it queued stay."""
    await request.app[SCHEDULES].delete(principal_of(request), request.match_info["id"])
    return web.Response(status=HTTPStatus.NO_CONTENT)


def register(app: web.Application) -> None:
    """Add the schedule routes."""
    app.router.add_post("/api/v1/schedules", create_schedule)
    app.router.add_get("/api/v1/schedules", list_schedules)
    app.router.add_get("/api/v1/schedules/{id}", get_schedule)
    app.router.add_delete("/api/v1/schedules/{id}", delete_schedule)
