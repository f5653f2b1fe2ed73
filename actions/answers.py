"""What an action call answers (SPEC 4.1): the first datagrid cell, or the whole run, and the
public form's renderings of that cell (JSON, XML, YAML, CSV)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import Final
from xml.sax.saxutils import escape, quoteattr

import yaml

from gateway.connectors.runs import StoredRun
from runtime.model import JsonValue

RUN_MEDIA_TYPE: Final = "application/vnd.gateway.run+json"
JSON: Final = "application/json"
XML: Final = "application/xml"
YAML: Final = "application/x-yaml"
CSV: Final = "text/csv"
RENDERINGS: Final = (JSON, XML, YAML, CSV)

_XML_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def first_cell(run: StoredRun) -> JsonValue:
    """The first cell of the run's datagrid: a string that is valid JSON parsed, any other
    string as it is, other values as they are; null when the run made no rows."""
    rows = run.result.rows
    if not rows or not rows[0]:
        return None
    cell = rows[0][0]
    if isinstance(cell, str):
        try:
            parsed: JsonValue = json.loads(cell)
        except ValueError:
            return cell
        return parsed
    return cell


def run_document(run: StoredRun) -> dict[str, JsonValue]:
    """The whole run, for `Accept: application/vnd.gateway.run+json`."""
    result = run.result
    return {
        "run_id": run.id,
        "status": result.status.value,
        "columns": [column.model_dump(mode="json") for column in result.columns],
        "rows": result.rows,
        "logs": result.logs,
        "duration_ms": result.duration_ms,
        "error": result.error.model_dump(mode="json") if result.error is not None else None,
        "version": run.version,
    }


def render(value: JsonValue, media_type: str) -> bytes:
    """`value` in one of `RENDERINGS`."""
    if media_type == XML:
        return to_xml(value).encode()
    if media_type == YAML:
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).encode()
    if media_type == CSV:
        return to_csv(value).encode()
    return json.dumps(value).encode()


def to_xml(value: JsonValue) -> str:
    """`<result>` holding the value: an object's members as elements named by their keys
    (a key that is no XML name becomes `<entry key="...">`), an array's items as `<item>`
    elements, a scalar as text (`true`/`false`, numbers as JSON writes them), null as an
    empty element with `null="true"`."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _element("result", value) + "\n"


def _element(name: str, value: JsonValue) -> str:
    tag, attributes = name, ""
    if not _XML_NAME.fullmatch(name) or name.lower().startswith("xml"):
        tag, attributes = "entry", f" key={quoteattr(name)}"
    if value is None:
        return f'<{tag}{attributes} null="true"/>'
    if isinstance(value, Mapping):
        inner = "".join(_element(str(k), v) for k, v in value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        inner = "".join(_element("item", item) for item in value)
    else:
        inner = escape(_scalar(value))
    return f"<{tag}{attributes}>{inner}</{tag}>"


def to_csv(value: JsonValue) -> str:
    """An array of objects as a header (keys in first-seen order) and a row each; an object
    as a header and one row; an array of other values as one value per line; a scalar as one
    value; null as nothing. Nested values are written as JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        header: dict[str, None] = {}
        for item in value:
            header.update(dict.fromkeys(str(k) for k in item))
        writer.writerow(header)
        for item in value:
            writer.writerow(_cell(item.get(name)) for name in header)
    elif isinstance(value, list):
        for item in value:
            writer.writerow([_cell(item)])
    elif value is not None:
        writer.writerow([_cell(value)])
    return out.getvalue()


def _cell(value: JsonValue) -> str:
    if isinstance(value, (Mapping, list)):
        return json.dumps(value)
    return "" if value is None else _scalar(value)


def _scalar(value: JsonValue) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)
