"""Check every response the test suite gets from the gateway against `openapi.yaml`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml
from aiohttp import web
from aiohttp.typedefs import Handler
from openapi_core import Config, OpenAPI
from openapi_core.contrib.aiohttp import AIOHTTPOpenAPIWebRequest, AIOHTTPOpenAPIWebResponse
from openapi_core.deserializing.media_types.util import plain_loads
from openapi_core.templating.paths.exceptions import PathNotFound

from gateway.keys import INSTANCE_ORIGINS
from writeback.datasets.load import FileFormat

SPEC_PATH = Path(__file__).parent.parent / "openapi.yaml"
# Bodies the gateway streams (dataset files): reading them here would defeat what is tested.
STREAMED_TYPES = frozenset(kind.value for kind in FileFormat)


@cache
def spec() -> OpenAPI:
    """The parsed document (parsed once per test session)."""
    # openapi-core reads JSON and text; the document itself is served as YAML.
    config = Config(
        extra_media_type_deserializers={
            "application/yaml": yaml.safe_load,
            "application/problem+json": json.loads,
            # An action's whole run (SPEC 4.1).
            "application/vnd.gateway.run+json": json.loads,
            # The public action form's renderings of a cell are text to the document.
            "application/xml": plain_loads,
            "application/x-yaml": plain_loads,
            "text/csv": plain_loads,
            # Scripts are served as JavaScript text (connector scripts).
            "application/javascript": plain_loads,
        }
    )
    return OpenAPI.from_file_path(str(SPEC_PATH), config=config)


@dataclass
class Conformance:
    """Mismatches seen so far: `(method, path, status, error)`."""

    errors: list[tuple[str, str, int, str]] = field(default_factory=list)
    checked: int = 0

    def middleware(self) -> web.middleware:  # type: ignore[valid-type]
        """A middleware that validates the final response of every request."""

        @web.middleware
        async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
            streamed = request.content_type in STREAMED_TYPES
            body = await request.read() if request.body_exists and not streamed else None
            response = await handler(request)
            if isinstance(response, web.Response):
                self._validate(request, body, response)
            return response

        return check

    def _validate(self, request: web.Request, body: bytes | None, response: web.Response) -> None:
        if request.app[INSTANCE_ORIGINS].instance_of(request.host) is not None:
            return  # an app instance's own origin is not the gateway's API (decision 0018)
        self.checked += 1
        try:
            spec().validate_response(
                AIOHTTPOpenAPIWebRequest(request, body=body),
                AIOHTTPOpenAPIWebResponse(response),
            )
        except PathNotFound as exc:
            # An undocumented path must answer exactly as the router does: a 404 problem.
            if response.status != 404 or response.content_type != "application/problem+json":
                self.errors.append((request.method, request.path, response.status, repr(exc)))
        except Exception as exc:  # openapi-core raises many types; all are mismatches
            self.errors.append((request.method, request.path, response.status, repr(exc)))


def watch(app: web.Application, conformance: Conformance) -> web.Application:
    """Validate every response of `app` (outermost, so it sees what the client sees)."""
    app.middlewares.insert(0, conformance.middleware())
    return app
