"""`openapi.yaml` states what the server validates: request schemas come from the models."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.connectors.models import HOST_PATTERN, URL_PATTERN, _http_url
from gateway.egress import HostPattern
from gateway.openapi import DOCUMENT, REQUEST_MODELS, render, request_schemas
from gateway.settings import Settings
from gateway.text import LINE_REFUSED
from tests.openapi_check import SPEC_PATH

_PARSES: re.Pattern[str] = re.compile(r"parse_body\(request, (\w+)\)")


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


def test_the_packaged_document_is_the_repository_document() -> None:
    assert DOCUMENT.resolve() == SPEC_PATH.resolve()


def test_the_committed_request_schemas_are_what_the_models_say() -> None:
    # Fails after a model changed without `python -m gateway.openapi` being run.
    text = SPEC_PATH.read_text(encoding="utf-8")
    assert render(text) == text


def _parsed_models(tmp_path: Path) -> dict[tuple[str, str], str]:
    """(method, path) -> the model name each handler passes to `parse_body`."""
    app = create_app(Settings(data_dir=tmp_path))
    parsed: dict[tuple[str, str], str] = {}
    for route in app.router.routes():
        if route.resource is None or route.method == "HEAD":
            continue
        found = _PARSES.findall(inspect.getsource(route.handler))
        assert len(found) <= 1, (route.method, route.resource.canonical)
        if found:
            parsed[(route.method.lower(), route.resource.canonical)] = found[0]
    return parsed


def _json_bodies() -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) -> the operation, for every operation with a JSON request body."""
    bodies = {}
    for path, item in _document()["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                bodies[(method, path)] = operation
    return bodies


def test_every_json_body_is_the_model_its_handler_parses(tmp_path: Path) -> None:
    parsed = _parsed_models(tmp_path)
    bodies = _json_bodies()
    assert set(parsed) == set(bodies)
    generated = {model.__name__ for model in REQUEST_MODELS}
    for operation_key, model in parsed.items():
        operation = bodies[operation_key]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, operation_key
        assert model in generated, f"add {model} to gateway.openapi.REQUEST_MODELS"
        assert "415" in operation["responses"], operation_key


def _keys(schema: object) -> set[str]:
    if isinstance(schema, dict):
        return set(schema).union(*(_keys(value) for value in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_keys(item) for item in schema))
    return set()


def test_the_request_schemas_use_json_schema_words_only() -> None:
    # pydantic writes a constraint it cannot place (`le` beside a before-validator) raw,
    # and JSON Schema tools then ignore it silently.
    schemas = _document()["components"]["schemas"]
    generated = {name: schemas[name] for name in request_schemas()}
    assert not _keys(generated) & {"ge", "le", "gt", "lt", "max_length", "min_length", "strict"}


_SAMPLES = settings(max_examples=300, derandomize=True, database=None, deadline=None)


@_SAMPLES
@given(st.from_regex(HOST_PATTERN))
def test_every_host_the_pattern_admits_parses(host: str) -> None:
    # The pattern is the document's word; the parser must not refuse what it admits.
    assume(re.search(LINE_REFUSED, host) is None)
    HostPattern.parse(host)


@_SAMPLES
@given(st.from_regex(URL_PATTERN))
def test_every_url_the_pattern_admits_is_an_http_url(url: str) -> None:
    assume(re.search(LINE_REFUSED, url) is None)
    assert _http_url(url) == url
