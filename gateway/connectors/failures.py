"""Why a run did not succeed, as the problem its caller gets (SPEC 4.3): the one mapping."""

from __future__ import annotations

from gateway.connectors.errors import (
    DeadlineExceeded,
    EgressRefused,
    ScriptFailed,
    UpstreamUnavailable,
)
from gateway.connectors.runs import StoredRun
from gateway.egress import EGRESS_REFUSED, UPSTREAM_FAILURES
from gateway.errors import CredentialsRejected, GatewayError
from runtime.model import RunStatus


def run_failure(run: StoredRun, *, auth_check: bool = False) -> GatewayError | None:
    """The problem of a run that did not succeed, with its `run_id` and `error`; None when
    it succeeded.

    A run that could not reach its upstream (no answer, or cut off by the deadline while
    waiting for one) is `upstream_unavailable`: the caller may try again later. A run its own
    deadline ended is `deadline_exceeded`, except for an auth check (`auth_check`), where
    every failure but those of the upstream and the egress policy says the script failed;
    there a reported `auth.authenticationFailed` is `credentials_rejected` with its message.
    """
    result = run.result
    error = result.error
    extra: dict[str, object] = {"run_id": run.id}
    if error is not None:
        extra["error"] = error.model_dump(mode="json")
    if auth_check:
        if result.status is RunStatus.SUCCESS and result.auth is not None and result.auth.success:
            return None
        if result.auth is not None and not result.auth.success:
            message = result.auth.message or "the connector's auth script refused the credentials"
            return CredentialsRejected(message, extra=extra)
    elif result.status is RunStatus.SUCCESS:
        return None
    message = error.message if error is not None else "the script did not succeed"
    if run.cut_off_host is not None:
        message = f"{message}, waiting for an answer from host {run.cut_off_host}"
        return UpstreamUnavailable(message, extra=extra)
    code = error.code if error is not None else None
    if code in UPSTREAM_FAILURES:
        return UpstreamUnavailable(message, extra=extra)
    if code == EGRESS_REFUSED:
        return EgressRefused(message, extra=extra)
    if result.status is RunStatus.TIMEOUT and not auth_check:
        return DeadlineExceeded(message, extra=extra)
    return ScriptFailed(message, extra=extra)
