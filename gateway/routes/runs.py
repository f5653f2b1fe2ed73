"""Run endpoints (SPEC 4.2, 4.3): development runs of a connector, and stored runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.auth import principal_of
from gateway.connectors.models import RunCreate
from gateway.connectors.runs import StoredRun
from gateway.keys import RUNS
from gateway.wire import page_parameters, parse_body


def run_result(run: StoredRun) -> dict[str, Any]:
    """The run result of SPEC 4.3 with its `run_id` and the version it ran (null: the draft)."""
    return {"run_id": run.id, **run.result.model_dump(mode="json"), "version": run.version}


def run_record(run: StoredRun) -> dict[str, Any]:
    """A stored run: the result plus who ran what, when, and how the account was chosen."""
    return {
        **run_result(run),
        "connector_guid": run.connector_guid,
        "user_id": run.user_id,
        "kind": run.kind,
        "mode": run.mode.value,
        "account_resolution": run.account_resolution,
        "scope": run.scope.value if run.scope is not None else None,
        "timings": run.timings,
        "created_at": _timestamp(run.created_at),
    }


def run_summary(run: StoredRun) -> dict[str, Any]:
    """A run in a list: no rows, logs or trace."""
    return {
        "run_id": run.id,
        "connector_guid": run.connector_guid,
        "user_id": run.user_id,
        "kind": run.kind,
        "mode": run.mode.value,
        "version": run.version,
        "status": run.status.value,
        "error": run.result.error.model_dump(mode="json") if run.result.error else None,
        "duration_ms": run.result.duration_ms,
        "created_at": _timestamp(run.created_at),
    }


def _timestamp(value: datetime) -> str:
    """UTC as pydantic writes it everywhere else in the API (`...Z`)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json(body: object, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(text=json.dumps(body), headers=headers)


async def create_run(request: web.Request) -> web.Response:
    """Run one of the connector's scripts now and answer the run (SPEC 4.3)."""
    principal = principal_of(request)
    body = await parse_body(request, RunCreate)
    run = await request.app[RUNS].run(principal, request.match_info["guid"], body)
    return _json(run_result(run), headers={"X-Run-Id": run.id})


async def get_run(request: web.Request) -> web.Response:
    """A stored run: the caller's own, or any of its customer's for an admin."""
    principal = principal_of(request)
    run = await request.app[RUNS].get_run(principal, request.match_info["id"])
    return _json(run_record(run))


async def list_runs(request: web.Request) -> web.Response:
    """A page of runs, newest first; `connector` filters by connector guid."""
    principal = principal_of(request)
    limit, cursor = page_parameters(request)
    connector = request.query.get("connector") or None
    items, next_cursor = await request.app[RUNS].list_runs(principal, connector, limit, cursor)
    return _json({"items": [run_summary(run) for run in items], "next_cursor": next_cursor})


def register(app: web.Application) -> None:
    """Add the run routes."""
    app.router.add_post("/api/v1/connectors/{guid}/runs", create_run)
    app.router.add_get("/api/v1/runs", list_runs)
    app.router.add_get("/api/v1/runs/{id}", get_run)
