"""Serving the app: malformed HTTP is answered with a problem and logged as a warning.

aiohttp answers a request it cannot parse (a NUL byte in a header, a bad request line)
before any middleware runs, from `RequestHandler.handle_error`: plain text, logged with a
traceback at error level. There is no hook for it (aio-libs/aiohttp#3287), so the
gateway's runner makes connections with a handler that overrides that one method.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from typing import Final

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import BaseRequest

from gateway.problems import problem_response

log = structlog.get_logger(__name__)

MALFORMED_DETAIL: Final = "the request is not valid HTTP/1.1"


class ProblemRequestHandler(web.RequestHandler):
    """A connection whose HTTP-level refusals (4xx from the parser) are problems."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request aiohttp refused before routing; 5xx stay aiohttp's.

        Raises:
            ConnectionError: part of a response was sent already.
        """
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        # No middleware ran: this is the request's only log line, and its id is new.
        request_id = uuid.uuid4().hex
        # The parser's message quotes the offending bytes, which may be a credential.
        log.warning(
            "malformed_request", status=status, reason=type(exc).__name__, request_id=request_id
        )
        if request.writer.output_size > 0:
            raise ConnectionError("a response was sent already; closing the connection")
        response = problem_response(
            "bad_request", MALFORMED_DETAIL, headers={"X-Request-ID": request_id}
        )
        response.force_close()
        return response


class ProblemServer(web.Server):
    """`web.Server` whose connections are `ProblemRequestHandler`s."""

    def __call__(self) -> web.RequestHandler:
        """A handler for a new connection (the protocol factory of `loop.create_server`)."""
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` serving the app through a `ProblemServer`."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return ProblemServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **plain._kwargs,
        )


async def _serve(app: web.Application, sock: socket.socket) -> None:
    runner = GatewayRunner(app, handle_signals=True)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        await asyncio.Event().wait()  # until SIGINT or SIGTERM raises GracefulExit
    finally:
        await runner.cleanup()


def serve(app: web.Application, *, sock: socket.socket) -> None:
    """Serve `app` on a bound `sock` until SIGINT or SIGTERM, then run its cleanup (as
    `web.run_app` does)."""
    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
        asyncio.run(_serve(app, sock))
