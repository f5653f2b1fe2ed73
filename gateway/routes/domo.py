"""The endpoints apps call (SPEC 4.1): an action's process endpoint and the public form."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Final

from aiohttp import web
from pydantic import ConfigDict, RootModel

from actions.answers import (
    CSV,
    JSON,
    RENDERINGS,
    RUN_MEDIA_TYPE,
    first_cell,
    render,
    run_document,
)
from actions.idempotency import MARGIN_S, Claim, StoredAnswer, check_key, fingerprint
from actions.service import ActionCall
from gateway.auth import principal_of
from gateway.connectors.errors import field_error
from gateway.connectors.failures import run_failure
from gateway.connectors.models import Scope
from gateway.connectors.runs import StoredRun
from gateway.errors import ValidationFailed
from gateway.identity.principal import Principal
from gateway.keys import ACTIONS, APP_INSTANCE, CONNECTORS
from gateway.problems import PROBLEMS, ProblemError, problem_response
from gateway.wire import MAX_LIMIT, parse_body
from runtime.model import JsonValue, Limits

RUN_ID_HEADER: Final = "X-Run-Id"
REPLAYED_HEADER: Final = "Idempotency-Replayed"

# How a successful run is answered: the run for the response's body and content type.
Renderer = Callable[[StoredRun], tuple[bytes, str]]


class ActionParameters(RootModel[JsonValue]):
    """The body of an action call: parameter values by name (the service checks the shape,
    so that a body that is no object is `invalid_parameters`, as SPEC 4.3 says)."""

    model_config = ConfigDict(strict=True, frozen=True)


def _query(request: web.Request, name: str) -> str | None:
    return request.query.get(name) or None


def _scope(request: web.Request) -> Scope | None:
    """The `scope` query parameter.

    Raises:
        ValidationFailed: it names no scope.
    """
    text = _query(request, "scope")
    if text is None:
        return None
    try:
        return Scope(text)
    except ValueError:
        message = "must be personal, customer or global"
        raise ValidationFailed(
            f"query parameter 'scope' {message}",
            [field_error(["query", "scope"], message, "enum")],
        ) from None


def _instance(request: web.Request) -> str | None:
    """The calling app instance: its origin's session, else `X-App-Instance` (a bearer caller
    on the gateway's own origin)."""
    return request.get(APP_INSTANCE) or request.headers.get("X-App-Instance") or None


async def process(request: web.Request) -> web.StreamResponse:
    """Run an action: answer its first datagrid cell, or the whole run when asked."""
    principal = principal_of(request)
    body = await parse_body(request, ActionParameters)
    call = ActionCall(
        guid=request.match_info["guid"],
        parameters=body.root,
        scope=_scope(request),
        account_id=_query(request, "account"),
        alias=_query(request, "accountAlias"),
        instance_id=_instance(request),
    )
    whole = RUN_MEDIA_TYPE in request.headers.get("Accept", "")
    return await _answer(request, principal, call, _run_renderer if whole else _cell_renderer)


async def list_public(request: web.Request) -> web.Response:
    """`GET /v1/domoactions`: the first 200 actions the caller may run, as a bare array."""
    principal = principal_of(request)
    actions, _ = await request.app[CONNECTORS].scopes.runnable_actions(principal, MAX_LIMIT, None)
    items = [{"name": a.name, "guid": a.guid, "version": a.version} for a in actions]
    return web.json_response(items)


async def process_public(request: web.Request) -> web.StreamResponse:
    """`POST /v1/domoactions/{guid}/process?account={id}`: the first cell in the format the
    `Accept` header asks for."""
    principal = principal_of(request)
    media_type = _negotiate(request.headers.get("Accept", ""))
    body = await parse_body(request, ActionParameters)
    call = ActionCall(
        guid=request.match_info["guid"],
        parameters=body.root,
        account_id=_query(request, "account"),
    )

    def rendered(run: StoredRun) -> tuple[bytes, str]:
        return render(first_cell(run), media_type), _with_charset(media_type)

    return await _answer(request, principal, call, rendered)


def _negotiate(accept: str) -> str:
    """The rendering `Accept` prefers (JSON when absent or `*/*`).

    Raises:
        ProblemError: `not_acceptable` (406) when it accepts none of them.
    """
    ranges: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((quality, -index, media.lower()))
    if not ranges:
        return JSON
    for quality, _, media in sorted(ranges, reverse=True):
        if quality <= 0:
            continue
        if media in ("*/*", "application/*"):
            return JSON
        if media in RENDERINGS:
            return media
        if media == "text/*":
            return CSV
    offered = ", ".join(RENDERINGS)
    raise ProblemError("not_acceptable", f"this endpoint answers {offered}; Accept asks for none")


def _with_charset(media_type: str) -> str:
    return f"{media_type}; charset=utf-8"


def _cell_renderer(run: StoredRun) -> tuple[bytes, str]:
    return json.dumps(first_cell(run)).encode(), _with_charset(JSON)


def _run_renderer(run: StoredRun) -> tuple[bytes, str]:
    return json.dumps(run_document(run)).encode(), RUN_MEDIA_TYPE


async def _answer(
    request: web.Request, principal: Principal, call: ActionCall, renderer: Renderer
) -> web.Response:
    """Run the call, or replay the stored answer of its `Idempotency-Key`."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return await _run(request, principal, call, renderer, None)
    check_key(key)
    keys = request.app[ACTIONS].idempotency
    print_ = fingerprint(request.method, request.path, request.query_string, await request.read())
    claimed = await keys.claim(principal, call.guid, key, print_)
    if isinstance(claimed, StoredAnswer):
        return _replay(claimed)
    try:
        response = await _run(request, principal, call, renderer, claimed)
    except BaseException:
        # Refused before it ran (or the gateway could not run it): the key is free again.
        await asyncio.shield(keys.release(claimed))
        raise
    answer = StoredAnswer(
        response.status,
        response.headers["Content-Type"],
        response.headers.get(RUN_ID_HEADER),
        bytes(response.body),  # type: ignore[arg-type]
    )
    await keys.complete(claimed, answer)
    return response


async def _run(
    request: web.Request,
    principal: Principal,
    call: ActionCall,
    renderer: Renderer,
    claim: Claim | None,
) -> web.Response:
    service = request.app[ACTIONS]

    async def hold(limits: Limits) -> None:
        if claim is not None:
            await service.idempotency.extend(claim, limits.wall_time_s + MARGIN_S)

    run = await service.process(principal, call, before_run=hold)
    headers = {RUN_ID_HEADER: run.id}
    failure = run_failure(run)
    if failure is None:
        body, content_type = renderer(run)
        return web.Response(body=body, headers={**headers, "Content-Type": content_type})
    if renderer is _run_renderer:
        # The whole run, with the status the failure has in every other form (decision 0017).
        body, content_type = renderer(run)
        return web.Response(
            status=PROBLEMS[failure.code][0],
            body=body,
            headers={**headers, "Content-Type": content_type},
        )
    return problem_response(
        failure.code, failure.detail, instance=request.path, headers=headers, extra=failure.extra
    )


def _replay(answer: StoredAnswer) -> web.Response:
    headers = {"Content-Type": answer.content_type, REPLAYED_HEADER: "true"}
    if answer.run_id is not None:
        headers[RUN_ID_HEADER] = answer.run_id
    return web.Response(status=answer.status, body=answer.body, headers=headers)


def register(app: web.Application) -> None:
    """Add the routes apps call."""
    app.router.add_post("/domo/actions/v1/{guid}/process", process)
    app.router.add_get("/v1/domoactions", list_public)
    app.router.add_post("/v1/domoactions/{guid}/process", process_public)
