"""Worker-side frames: each one a dict built from values parsed out of the prelude and checked.

The prelude runs in the same Context as the script, so what it hands over may have been
shaped by the script (a `toJSON` on Object.prototype, a replaced `JSON.stringify`). Nothing
it hands over is ever spliced into a frame: it is parsed, its shape and types are checked,
and the frame is a new dict (docs/decisions/0009-worker-frames.md).
"""

from __future__ import annotations

import json
from typing import Any, Final

LOG_TRUNCATED: Final = "[log truncated]"
RESULT_STATUSES: Final = frozenset({"success", "failed", "error"})
COLUMN_TYPES: Final = frozenset(
    {"STRING", "LONG", "DOUBLE", "DECIMAL", "DATE", "DATETIME", "BOOLEAN"}
)
TREE_DEPTH: Final = 64
"""Deepest discovery tree accepted (the prelude refuses deeper ones first)."""

_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


class FrameError(Exception):
    """What the prelude handed over is not what it would make: the script subverted it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the script tampered with the runtime ({what})")


def _parsed(text: object, what: str) -> object:
    if not isinstance(text, str):
        raise FrameError(f"{what} that is not text")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError(f"{what} that is not JSON") from None


def _object(value: object, keys: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or value.keys() != keys:
        raise FrameError(f"a malformed {what}")
    return value


def _strings(value: object, what: str) -> list[str]:
    if type(value) is not list or not all(type(item) is str for item in value):
        raise FrameError(f"{what} that are not strings")
    return value


def _rows(value: object) -> list[list[Any]]:
    # The hot path: a million cells a second go through here.
    if type(value) is not list:
        raise FrameError("rows that are not a list")
    scalars = _SCALARS.issuperset
    for row in value:
        if type(row) is not list or not scalars(map(type, row)):
            raise FrameError("a row that is not a list of plain values")
    return value


def log_line(line_json: object) -> str:
    """The text of one log line (the prelude sends it as a JSON string).

    Raises:
        FrameError: it is not a JSON string.
    """
    line = _parsed(line_json, "a log line")
    if type(line) is not str:
        raise FrameError("a log line that is not a string")
    return line


def call_frame(call_id: int, op: object, args_json: object) -> dict[str, Any]:
    """A host call: its `op` and its arguments (an object).

    Raises:
        FrameError: the arguments are not a JSON object.
    """
    args = _parsed(args_json, "host call arguments")
    if not isinstance(op, str) or not isinstance(args, dict):
        raise FrameError("a malformed host call")
    return {"t": "call", "id": call_id, "op": op, "args": args}


def rows_frame(chunk_json: object) -> dict[str, Any]:
    """A chunk of rows: `{"columns": [names], "rows": [[plain values]]}` and nothing else.

    Raises:
        FrameError: the chunk has another shape or holds other values.
    """
    chunk = _object(_parsed(chunk_json, "a rows chunk"), frozenset({"columns", "rows"}), "chunk")
    return {
        "t": "rows",
        "columns": _strings(chunk["columns"], "column names"),
        "rows": _rows(chunk["rows"]),
    }


_RESULT_KEYS: Final = frozenset({"status", "auth", "error", "columns", "rows", "discovery"})


def result_frame(result_json: object) -> dict[str, Any]:
    """The run's result as the prelude reported it, field by field.

    Raises:
        FrameError: a field is missing, extra or of the wrong type.
    """
    result = _object(_parsed(result_json, "a result"), _RESULT_KEYS, "result")
    status = result["status"]
    if status not in RESULT_STATUSES:
        raise FrameError("a result with an unknown status")
    return {
        "t": "result",
        "status": status,
        "auth": _auth(result["auth"]),
        "error": _error(result["error"]),
        "columns": _columns(result["columns"]),
        "rows": _rows(result["rows"]),
        "discovery": _discovery(result["discovery"]),
    }


def error_result(code: str, message: str) -> dict[str, Any]:
    """A `result` frame of a run that ended in an error the worker saw itself."""
    return {
        "t": "result",
        "status": "error",
        "auth": None,
        "error": {"code": code, "message": message, "line": None},
        "columns": [],
        "rows": [],
        "discovery": None,
    }


def _auth(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    auth = _object(value, frozenset({"success", "message"}), "auth outcome")
    if type(auth["success"]) is not bool or not isinstance(auth["message"], str | None):
        raise FrameError("a malformed auth outcome")
    return {"success": auth["success"], "message": auth["message"]}


def _error(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    error = _object(value, frozenset({"code", "message", "line"}), "error")
    code, message, line = error["code"], error["message"], error["line"]
    if type(code) not in (str, int) or type(message) is not str:
        raise FrameError("a malformed error")
    return {"code": code, "message": message, "line": line if type(line) is int else None}


def _columns(value: object) -> list[dict[str, str]]:
    if type(value) is not list:
        raise FrameError("columns that are not a list")
    columns = []
    for item in value:
        column = _object(item, frozenset({"name", "type"}), "column")
        if type(column["name"]) is not str or column["type"] not in COLUMN_TYPES:
            raise FrameError("a malformed column")
        columns.append({"name": column["name"], "type": column["type"]})
    return columns


def _discovery(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    discovery = _object(value, frozenset({"options", "tree"}), "discovery")
    options = []
    for item in discovery["options"] if type(discovery["options"]) is list else [None]:
        option = _object(item, frozenset({"value", "label"}), "discovery option")
        options.append({"value": _text(option["value"]), "label": _text(option["label"])})
    tree = discovery["tree"]
    return {"options": options, "tree": None if tree is None else _node(tree, 0)}


def _text(value: object) -> str:
    if type(value) is not str:
        raise FrameError("a discovery value that is not a string")
    return value


def _node(value: object, depth: int) -> dict[str, Any]:
    if depth > TREE_DEPTH:
        raise FrameError("a discovery tree nested too deeply")
    if isinstance(value, dict) and value.keys() == {"name", "leaf"} and value["leaf"] is True:
        return {"name": _text(value["name"]), "leaf": True}
    node = _object(value, frozenset({"name", "children"}), "discovery node")
    children = node["children"]
    if type(children) is not list:
        raise FrameError("a discovery node whose children are not a list")
    return {"name": _text(node["name"]), "children": [_node(c, depth + 1) for c in children]}


def checked_frame(answer_json: object) -> dict[str, Any]:
    """The answer to a `check`: whether the script parses and, if not, where it stops.

    Raises:
        FrameError: the answer is not an object.
    """
    answer = _parsed(answer_json, "a syntax check")
    if not isinstance(answer, dict):
        raise FrameError("a malformed syntax check")
    if answer.get("ok") is True:
        return {"t": "checked", "ok": True, "message": None, "line": None, "column": None}
    line, column = answer.get("line"), answer.get("column")
    return {
        "t": "checked",
        "ok": False,
        "message": str(answer.get("message")),
        "line": line if type(line) is int else None,
        "column": column if type(column) is int else None,
    }
