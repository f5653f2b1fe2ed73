"""The `datagrid` global (runtime/js/datagrid.js) in a real QuickJS Context.

The prelude's core.js is replaced by a small stub with the same contract (`H.emit`, `H.util`,
`util`, `fail`, `scriptError`, `RUN`), so these tests pin datagrid's behaviour on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import quickjs

from runtime.grid import finalize_rows
from runtime.model import Column, ColumnType, JsonValue
from runtime.textformats import parse_csv, parse_xml

# Mirrors core.js: `bare` drops the prototype, `fail` reports once (first error wins) and
# always throws; `api` names the public datagrid function passed as `above`, so tests can check
# which one ended the run.
STUB = r"""
const H = { emit: __t_emit, util: __t_util, source: __t_source };
const RUN = { chunkRows: 10000, resultRows: null, ended: false };
const stubSetPrototypeOf = Object.setPrototypeOf;
function bare(value) { return stubSetPrototypeOf(value, null); }
function lineOf(err) {
  const m = /<input>:(\d+)/.exec(String(err.stack || ''));
  return m ? Number(m[1]) : null;
}
function scriptError(message, above) {
  const error = new Error(message);
  if (above) Error.captureStackTrace(error, above);
  return error;
}
function fail(status, code, message, above) {
  if (typeof above !== 'function') throw new Error('stub: fail() needs the public function');
  const error = scriptError(message, above);
  if (!RUN.ended) {
    RUN.ended = true;
    let api = above === gridFinish ? 'gridFinish' : null;
    for (const k of Object.keys(globalThis.datagrid)) if (globalThis.datagrid[k] === above) api = k;
    __t_fatal(JSON.stringify({ status, code, message, line: lineOf(error), api }));
  }
  throw error;
}
function util(op, arg, above) {
  const reply = JSON.parse(H.util(op, JSON.stringify(arg)));
  if (reply.error !== undefined) throw scriptError(reply.error, above || util);
  return reply.ok;
}
"""

HARNESS = r"""
globalThis.__t_setup = function (runJson) {
  const run = JSON.parse(runJson);
  RUN.chunkRows = run.chunkRows;
  RUN.resultRows = run.resultRows;
};
globalThis.__t_run = function (script) {
  try {
    (0, eval)(script);
    return null;
  } catch (e) {
    return RUN.ended ? null : String(e);
  }
};
const J = JSON;
globalThis.__t_finish = function () {
  try { return J.stringify(gridFinish()); } catch (e) { return null; }
};
"""

DATAGRID_JS = (resources.files("runtime") / "js" / "datagrid.js").read_text(encoding="utf-8")
MAGIC_JS = (resources.files("runtime") / "js" / "lazy" / "magic.js").read_text(encoding="utf-8")


@dataclass
class Outcome:
    """What one script run produced."""

    fatal: dict[str, Any] | None
    exception: str | None
    chunks: list[dict[str, Any]]
    columns: list[dict[str, str]] = field(default_factory=list)
    final_rows: list[list[JsonValue]] = field(default_factory=list)

    @property
    def rows(self) -> list[list[JsonValue]]:
        """Raw rows: the emitted chunks, then the rows gridFinish returned."""
        emitted = [row for chunk in self.chunks for row in chunk["rows"]]
        return emitted + self.final_rows

    @property
    def types(self) -> dict[str, str]:
        return {column["name"]: column["type"] for column in self.columns}

    def finalized(self) -> list[list[JsonValue]]:
        columns = [Column(name=c["name"], type=ColumnType(c["type"])) for c in self.columns]
        return finalize_rows(columns, self.rows)

    def records(self) -> list[dict[str, JsonValue]]:
        names = [column["name"] for column in self.columns]
        return [dict(zip(names, row, strict=True)) for row in self.finalized()]


def _util(op: str, arg_json: str) -> str:
    parsers = {"csv": parse_csv, "xml": parse_xml}
    try:
        return json.dumps({"ok": parsers[op](json.loads(arg_json))})
    except ValueError as exc:
        return json.dumps({"error": str(exc)})


def run_grid(
    script: str, *, chunk_rows: int = 10_000, result_rows: int | None = None, setup: str = ""
) -> Outcome:
    """Run `script` in a fresh Context holding the stub and datagrid.js."""
    context = quickjs.Context()
    chunks: list[dict[str, Any]] = []
    fatal: list[dict[str, Any]] = []
    context.add_callable("__t_emit", lambda text: chunks.append(json.loads(text)))
    context.add_callable("__t_source", lambda name: MAGIC_JS if name == "magic" else "")
    context.add_callable("__t_fatal", lambda text: fatal.append(json.loads(text)))
    context.add_callable("__t_util", _util)
    context.eval("(function () {\n" + STUB + DATAGRID_JS + HARNESS + "\n})();")
    context.get("__t_setup")(json.dumps({"chunkRows": chunk_rows, "resultRows": result_rows}))
    if setup:
        context.eval(setup)
    exception = context.get("__t_run")(script)
    outcome = Outcome(fatal=fatal[0] if fatal else None, exception=exception, chunks=chunks)
    if outcome.fatal is None and exception is None:
        finished = context.get("__t_finish")()
        if finished is None:
            outcome.fatal = fatal[0]
        else:
            grid = json.loads(finished)
            outcome.columns = grid["columns"]
            outcome.final_rows = grid["rows"]
    return outcome


def bad_cell(outcome: Outcome) -> str:
    """The message of the bad_cell error that ended the run."""
    assert outcome.fatal is not None, outcome
    assert outcome.fatal["status"] == "error"
    assert outcome.fatal["code"] == "bad_cell"
    message = outcome.fatal["message"]
    assert isinstance(message, str)
    return message


def declare(*columns: tuple[str, str]) -> str:
    return "".join(f"datagrid.addColumn({json.dumps(n)}, {t});\n" for n, t in columns)


# --- declared columns -------------------------------------------------------------------
def test_type_constants_are_the_type_names() -> None:
    names = ["STRING", "DOUBLE", "LONG", "DATE", "DATETIME", "BOOLEAN"]
    script = "globalThis.out = [" + ",".join(f"datagrid.DATA_TYPE_{n}" for n in names) + "];"
    context = quickjs.Context()
    context.add_callable("__t_emit", lambda text: None)
    context.add_callable("__t_source", lambda name: MAGIC_JS if name == "magic" else "")
    context.add_callable("__t_fatal", lambda text: None)
    context.add_callable("__t_util", _util)
    context.eval("(function () {\n" + STUB + DATAGRID_JS + "\n})();")
    context.eval(script)
    assert json.loads(context.eval("JSON.stringify(out)")) == names


def test_simple_grid_has_declared_types_and_converted_cells() -> None:
    outcome = run_grid(
        declare(("Name", "datagrid.DATA_TYPE_STRING"), ("Amount", "datagrid.DATA_TYPE_DOUBLE"))
        + "datagrid.addCell('a'); datagrid.addCell(1.5); datagrid.endRow();\n"
        + "datagrid.addCell('b'); datagrid.addCell('3'); datagrid.endRow();\n"
    )
    assert outcome.fatal is None
    assert outcome.columns == [
        {"name": "Name", "type": "STRING"},
        {"name": "Amount", "type": "DOUBLE"},
    ]
    assert outcome.rows == [["a", 1.5], ["b", 3]]
    assert outcome.finalized() == [["a", 1.5], ["b", 3.0]]


def test_add_column_accepts_type_names_in_any_case_and_defaults_to_string() -> None:
    outcome = run_grid(
        "datagrid.addColumn('a', 'double'); datagrid.addColumn('b', 'Long');"
        "datagrid.addColumn('c', 'datetime'); datagrid.addColumn('d');"
    )
    assert outcome.types == {"a": "DOUBLE", "b": "LONG", "c": "DATETIME", "d": "STRING"}


def test_end_row_with_fewer_cells_fills_nulls() -> None:
    outcome = run_grid(
        declare(("a", "'STRING'"), ("b", "'LONG'"), ("c", "'DATE'"))
        + "datagrid.addCell('x'); datagrid.endRow(); datagrid.endRow();"
    )
    assert outcome.finalized() == [["x", None, None], [None, None, None]]


@pytest.mark.parametrize("type_name", ["STRING", "DOUBLE", "LONG", "DATE", "DATETIME", "BOOLEAN"])
def test_empty_string_null_and_undefined_are_null_in_every_type(type_name: str) -> None:
    outcome = run_grid(
        f"datagrid.addColumn('v', '{type_name}');"
        "for (const v of ['', null, undefined]) { datagrid.addCell(v); datagrid.endRow(); }"
    )
    assert outcome.fatal is None
    assert outcome.finalized() == [[None], [None], [None]]


@pytest.mark.parametrize(
    ("type_name", "js_value", "expected"),
    [
        ("STRING", "5", "5"),
        ("STRING", "1e21", "1e+21"),
        ("STRING", "0.1", "0.1"),
        ("STRING", "true", "true"),
        ("STRING", "[1, 2]", "1,2"),
        ("DOUBLE", "'3.5'", 3.5),
        ("DOUBLE", "' 42 '", 42.0),
        ("DOUBLE", "'   '", None),
        ("DOUBLE", "'-1e3'", -1000.0),
        ("LONG", "'42'", 42),
        ("LONG", "2 ** 40", 2**40),
        ("LONG", "'1099511627776'", 1099511627776),
        ("LONG", "2 ** 60", 2**60),
        ("LONG", "'9007199254740993'", 9007199254740993),
        ("LONG", "'9223372036854775807'", 9223372036854775807),
        ("LONG", "'-9223372036854775808'", -9223372036854775808),
        ("LONG", "'3.0'", 3),
        ("BOOLEAN", "true", True),
        ("BOOLEAN", "'FALSE'", False),
        ("DATE", "'2016-02-29'", "2016-02-29"),
        ("DATE", "'2000-02-29'", "2000-02-29"),
        ("DATETIME", "'2017-12-31T23:59:59'", "2017-12-31T23:59:59"),
    ],
)
def test_values_are_coerced_the_javascript_way(
    type_name: str, js_value: str, expected: JsonValue
) -> None:
    outcome = run_grid(
        f"datagrid.addColumn('v', '{type_name}'); datagrid.addCell({js_value}); datagrid.endRow();"
    )
    assert outcome.fatal is None, outcome.fatal
    assert outcome.finalized() == [[expected]]
    assert type(outcome.finalized()[0][0]) is type(expected)


def test_date_objects_are_formatted_in_utc() -> None:
    outcome = run_grid(
        declare(("d", "datagrid.DATA_TYPE_DATE"), ("t", "datagrid.DATA_TYPE_DATETIME"))
        + "const when = new Date(Date.UTC(2017, 0, 5, 23, 4, 5, 678));"
        + "datagrid.addCell(when); datagrid.addCell(when); datagrid.endRow();"
    )
    assert outcome.finalized() == [["2017-01-05", "2017-01-05T23:04:05"]]


@pytest.mark.parametrize(
    ("type_name", "js_value", "shown", "expected"),
    [
        ("DOUBLE", "'abc'", "'abc'", "DOUBLE (a number)"),
        ("DOUBLE", "true", "true", "DOUBLE (a number)"),
        ("DOUBLE", "NaN", "NaN", "DOUBLE (a number)"),
        ("DOUBLE", "'Infinity'", "'Infinity'", "DOUBLE (a number)"),
        ("DOUBLE", "{a: 1}", '{"a":1}', "DOUBLE (a number)"),
        ("LONG", "1.5", "1.5", "LONG (an integer)"),
        ("LONG", "'1.5'", "'1.5'", "LONG (an integer)"),
        ("LONG", "2 ** 63", "9223372036854776000", "LONG (an integer)"),
        ("LONG", "'9223372036854775808'", "'9223372036854775808'", "LONG (an integer)"),
        ("LONG", "false", "false", "LONG (an integer)"),
        ("DATE", "'2017-02-29'", "'2017-02-29'", "DATE (yyyy-MM-dd)"),
        ("DATE", "'1900-02-29'", "'1900-02-29'", "DATE (yyyy-MM-dd)"),
        ("DATE", "'2017-04-31'", "'2017-04-31'", "DATE (yyyy-MM-dd)"),
        ("DATE", "'2017-1-5'", "'2017-1-5'", "DATE (yyyy-MM-dd)"),
        ("DATE", "'0000-01-01'", "'0000-01-01'", "DATE (yyyy-MM-dd)"),
        ("DATE", "'2017-01-05T00:00:00'", "'2017-01-05T00:00:00'", "DATE (yyyy-MM-dd)"),
        ("DATE", "20170105", "20170105", "DATE (yyyy-MM-dd)"),
        ("DATE", "new Date(NaN)", "Date(Invalid Date)", "DATE (yyyy-MM-dd)"),
        ("DATETIME", "'2017-13-01T00:00:00'", "'2017-13-01T00:00:00'", "DATETIME"),
        ("DATETIME", "'2017-01-05T24:00:00'", "'2017-01-05T24:00:00'", "DATETIME"),
        ("DATETIME", "'2017-01-05T10:60:00'", "'2017-01-05T10:60:00'", "DATETIME"),
        ("DATETIME", "'2017-01-05T10:00:60'", "'2017-01-05T10:00:60'", "DATETIME"),
        ("DATETIME", "'2017-01-05 10:00:00'", "'2017-01-05 10:00:00'", "DATETIME"),
        ("DATETIME", "'2017-01-05T10:00:00Z'", "'2017-01-05T10:00:00Z'", "DATETIME"),
        ("BOOLEAN", "'yes'", "'yes'", "BOOLEAN (true or false)"),
        ("BOOLEAN", "1", "1", "BOOLEAN (true or false)"),
    ],
)
def test_a_value_not_of_the_column_type_is_a_bad_cell(
    type_name: str, js_value: str, shown: str, expected: str
) -> None:
    if expected == "DATETIME":
        expected = "DATETIME (yyyy-MM-dd'T'HH:mm:ss)"
    outcome = run_grid(
        "datagrid.addColumn('first', 'STRING');\n"
        f"datagrid.addColumn('v', '{type_name}');\n"
        "datagrid.addCell('ok'); datagrid.addCell(null); datagrid.endRow();\n"
        f"datagrid.addCell('ok'); datagrid.addCell({js_value}); datagrid.endRow();\n"
    )
    assert bad_cell(outcome) == f"row 2, column 'v' (2): {shown} is not a {expected}"
    assert outcome.fatal is not None
    assert outcome.fatal["api"] == "addCell"
    assert outcome.fatal["line"] == 4


def test_bad_datetime_message_matches_the_spec_example() -> None:
    outcome = run_grid(
        declare(*[(name, "'STRING'") for name in ("a", "b", "c", "d")], ("CloseDate", "'DATETIME'"))
        + "for (let r = 0; r < 3; r++) {\n"
        + "  for (let c = 0; c < 4; c++) datagrid.addCell('x');\n"
        + "  datagrid.addCell(r < 2 ? '2017-01-05T00:00:00' : '2017-01-05');\n"
        + "  datagrid.endRow();\n"
        + "}\n"
    )
    assert bad_cell(outcome) == (
        "row 3, column 'CloseDate' (5): '2017-01-05' is not a DATETIME (yyyy-MM-dd'T'HH:mm:ss)"
    )


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    outcome = run_grid("datagrid.addColumn('n', 'DOUBLE'); datagrid.addCell('x'.repeat(500));")
    assert (
        bad_cell(outcome)
        == "row 1, column 'n' (1): '" + "x" * 100 + "…' is not a DOUBLE (a number)"
    )


def test_add_cell_before_any_column_is_a_bad_cell() -> None:
    outcome = run_grid("datagrid.addCell('x');")
    assert bad_cell(outcome) == (
        "row 1, column 1: no column is defined (call datagrid.addColumn before datagrid.addCell)"
    )


def test_more_cells_than_columns_is_a_bad_cell() -> None:
    outcome = run_grid(
        declare(("a", "'STRING'"), ("b", "'STRING'"))
        + "datagrid.addCell(1); datagrid.addCell(2); datagrid.endRow();\n"
        + "datagrid.addCell(1); datagrid.addCell(2); datagrid.addCell('three');\n"
    )
    assert bad_cell(outcome) == (
        "row 2, column 3: more cells than the 2 columns (the extra value is 'three')"
    )
    assert outcome.fatal is not None
    assert outcome.fatal["line"] == 4


def test_a_row_not_ended_at_the_end_of_the_run_is_a_bad_cell() -> None:
    outcome = run_grid(
        declare(("a", "'STRING'"), ("b", "'STRING'"), ("c", "'STRING'"))
        + "datagrid.addCell(1); datagrid.endRow(); datagrid.addCell(1); datagrid.addCell(2);"
    )
    assert bad_cell(outcome) == (
        "row 2, column 'b' (2): the row was not ended (call datagrid.endRow() after its last cell)"
    )
    assert outcome.fatal is not None
    assert outcome.fatal["api"] == "gridFinish"


def test_end_row_before_any_column_is_a_bad_cell() -> None:
    outcome = run_grid("datagrid.endRow();")
    assert bad_cell(outcome) == "row 1: no column is defined (call datagrid.addColumn first)"


def test_add_column_after_the_first_cell_is_a_bad_cell() -> None:
    outcome = run_grid(
        "datagrid.addColumn('a', 'STRING'); datagrid.addCell('x'); datagrid.endRow();"
        "datagrid.addColumn('late', 'LONG');"
    )
    assert bad_cell(outcome) == (
        "row 2, column 'late' (2): columns must be added before the first cell"
    )
    assert outcome.fatal is not None
    assert outcome.fatal["api"] == "addColumn"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "datagrid.addColumn('a', 'STRING'); datagrid.addColumn('a', 'LONG');",
            "column 'a' (2): the name is already used by column 1",
        ),
        (
            "datagrid.addColumn('a', 'INTEGER');",
            "column 'a' (1): unknown type 'INTEGER' (use datagrid.DATA_TYPE_STRING, _DOUBLE,"
            " _LONG, _DATE, _DATETIME or _BOOLEAN)",
        ),
        ("datagrid.addColumn('', 'STRING');", "column '' (1): a column needs a name"),
    ],
)
def test_a_bad_column_definition_is_a_bad_cell(script: str, message: str) -> None:
    assert bad_cell(run_grid(script)) == message


def test_a_bad_cell_ends_the_run_even_inside_try_catch() -> None:
    outcome = run_grid(
        "datagrid.addColumn('n', 'DOUBLE');\n"
        "try { datagrid.addCell('x'); } catch (e) { datagrid.error(1, 'not this'); }\n"
    )
    assert bad_cell(outcome) == "row 1, column 'n' (1): 'x' is not a DOUBLE (a number)"


def test_a_script_shadowing_builtins_does_not_break_datagrid() -> None:
    outcome = run_grid(
        "var Map = null, Date = null, Array = null, Object = null, String = null;\n"
        "datagrid.magicParseJSON([{a: 1, b: {c: 'x'}, d: [1]}]);\n"
        "datagrid.addCell(2); datagrid.addCell('y'); datagrid.addCell('[]'); datagrid.endRow();\n"
    )
    assert outcome.fatal is None
    assert outcome.exception is None
    assert outcome.records() == [{"a": 1, "b.c": "x", "d": "[1]"}, {"a": 2, "b.c": "y", "d": "[]"}]


def test_internal_helpers_are_not_globals() -> None:
    outcome = run_grid(
        "datagrid.magicParseJSON({n: [typeof gridAddCell, typeof gridFinish, typeof H].join()});"
    )
    assert outcome.records() == [{"n": "undefined,undefined,undefined"}]


# --- datagrid.error ---------------------------------------------------------------------
@pytest.mark.parametrize(("code", "expected"), [("0", 0), ("'E_QUOTA'", "E_QUOTA"), ("42", 42)])
def test_error_keeps_the_scripts_code_and_message(code: str, expected: JsonValue) -> None:
    outcome = run_grid(f"\ndatagrid.error({code}, 'Quota exceeded');")
    assert outcome.fatal == {
        "status": "failed",
        "code": expected,
        "message": "Quota exceeded",
        "line": 2,
        "api": "error",
    }


def test_error_ends_the_run_inside_try_catch_and_the_first_call_decides() -> None:
    outcome = run_grid(
        "try { datagrid.error(1, 'first'); } catch (e) {}\n"
        "datagrid.error(2, 'second');\n"
        "datagrid.addColumn('a'); datagrid.addCell('x');"
    )
    assert outcome.fatal is not None
    assert (outcome.fatal["code"], outcome.fatal["message"]) == (1, "first")


def test_error_with_only_a_text_uses_it_as_the_message() -> None:
    outcome = run_grid("datagrid.error('Report not supported');")
    assert outcome.fatal is not None
    assert outcome.fatal["message"] == "Report not supported"


def test_error_message_is_converted_to_a_string() -> None:
    outcome = run_grid("datagrid.error(7, 404);")
    assert outcome.fatal is not None
    assert (outcome.fatal["code"], outcome.fatal["message"]) == (7, "404")


# --- chunks and limits ------------------------------------------------------------------
def test_rows_are_emitted_in_chunks_of_chunk_rows() -> None:
    outcome = run_grid(
        declare(("i", "'LONG'"))
        + "for (let i = 0; i < 7; i++) { datagrid.addCell(i); datagrid.endRow(); }",
        chunk_rows=3,
    )
    assert outcome.chunks == [
        {"columns": ["i"], "rows": [[0], [1], [2]]},
        {"columns": ["i"], "rows": [[3], [4], [5]]},
    ]
    assert outcome.final_rows == [[6]]


def test_large_text_is_emitted_before_chunk_rows_is_reached() -> None:
    outcome = run_grid(
        declare(("s", "'STRING'"))
        + "const big = 'x'.repeat(1024 * 1024);"
        + "for (let i = 0; i < 6; i++) { datagrid.addCell(big + i); datagrid.endRow(); }"
    )
    assert len(outcome.chunks) == 1
    assert len(outcome.chunks[0]["rows"]) == 4
    assert len(outcome.rows) == 6


def test_more_rows_than_result_rows_is_a_result_limit_error() -> None:
    outcome = run_grid(
        declare(("i", "'LONG'"))
        + "for (let i = 0; i < 10; i++) {\n  datagrid.addCell(i);\n  datagrid.endRow();\n}",
        result_rows=5,
    )
    assert outcome.fatal == {
        "status": "error",
        "code": "result_limit",
        "message": "the result has more than 5 rows",
        "line": 4,
        "api": "endRow",
    }


def test_result_rows_counts_magic_parse_rows_too() -> None:
    outcome = run_grid("datagrid.magicParseJSON([{a: 1}, {a: 2}, {a: 3}]);", result_rows=2)
    assert outcome.fatal is not None
    assert (outcome.fatal["code"], outcome.fatal["api"]) == ("result_limit", "magicParseJSON")


def test_exactly_result_rows_rows_is_fine() -> None:
    outcome = run_grid("datagrid.magicParseJSON([{a: 1}, {a: 2}]);", result_rows=2)
    assert outcome.fatal is None
    assert outcome.finalized() == [[1], [2]]


# --- magicParseJSON ---------------------------------------------------------------------
def test_magic_parse_json_accumulates_arrays_objects_and_strings() -> None:
    outcome = run_grid(
        "datagrid.magicParseJSON([{id: 1, name: 'a'}, {id: 2, name: 'b'}]);\n"
        "datagrid.magicParseJSON({id: 3, city: 'Oslo'});\n"
        'datagrid.magicParseJSON(\'[{"name": "d", "id": 4, "zip": "0150"}]\');\n'
        "datagrid.magicParseJSON('{\"id\": 5}');\n"
        "datagrid.magicParseJSON('[]');\n",
        chunk_rows=2,
    )
    assert outcome.columns == [
        {"name": "id", "type": "LONG"},
        {"name": "name", "type": "STRING"},
        {"name": "city", "type": "STRING"},
        {"name": "zip", "type": "STRING"},
    ]
    assert outcome.finalized() == [
        [1, "a", None, None],
        [2, "b", None, None],
        [3, None, "Oslo", None],
        [4, "d", None, "0150"],
        [5, None, None, None],
    ]
    assert [chunk["columns"] for chunk in outcome.chunks] == [
        ["id", "name"],
        ["id", "name", "city", "zip"],
    ]


def test_magic_parse_json_in_a_paging_loop() -> None:
    outcome = run_grid(
        "for (let page = 0; page < 5; page++) {\n"
        "  const items = [];\n"
        "  for (let i = 0; i < 3; i++) items.push({n: page * 3 + i, v: (page * 3 + i) / 2});\n"
        "  datagrid.magicParseJSON(page % 2 ? items : JSON.stringify(items));\n"
        "}\n",
        chunk_rows=4,
    )
    assert outcome.types == {"n": "LONG", "v": "DOUBLE"}
    assert outcome.finalized() == [[n, n / 2] for n in range(15)]
    assert [len(chunk["rows"]) for chunk in outcome.chunks] == [4, 4, 4]


def test_magic_parse_json_flattens_nested_objects_and_keeps_arrays_as_json() -> None:
    outcome = run_grid(
        "datagrid.magicParseJSON({id: 1, owner: {name: 'Ann', role: {title: 'CEO'}},"
        " tags: ['a', 'b'], items: [{x: 1}], empty: []});"
    )
    assert outcome.records() == [
        {
            "id": 1,
            "owner.name": "Ann",
            "owner.role.title": "CEO",
            "tags": '["a","b"]',
            "items": '[{"x":1}]',
            "empty": "[]",
        }
    ]
    assert outcome.types["tags"] == "STRING"


@pytest.mark.parametrize(
    ("values", "expected_type", "expected"),
    [
        ("[1, 2, 3]", "LONG", [1, 2, 3]),
        ("[1, 2.5]", "DOUBLE", [1.0, 2.5]),
        ("[1.5, '2', '3.25', '-1e3']", "DOUBLE", [1.5, 2.0, 3.25, -1000.0]),
        ("['1', '-2', '0']", "LONG", [1, -2, 0]),
        ("['9007199254740993']", "LONG", [9007199254740993]),
        ("['99999999999999999999']", "STRING", ["99999999999999999999"]),
        ("[true, false]", "BOOLEAN", [True, False]),
        ("['true', false, 'FALSE']", "BOOLEAN", [True, False, False]),
        ("['2017-01-05', '2016-02-29']", "DATE", ["2017-01-05", "2016-02-29"]),
        ("['2017-02-30']", "STRING", ["2017-02-30"]),
        (
            "['2017-01-05T10:00:00', '2017-01-05T10:00:00Z', '2017-01-05T10:00:00.000+02:00']",
            "DATETIME",
            ["2017-01-05T10:00:00", "2017-01-05T10:00:00", "2017-01-05T08:00:00"],
        ),
        ("['2017-01-05T10:00:00.123Z']", "STRING", ["2017-01-05T10:00:00.123Z"]),
        ("['2017-01-05', '2017-01-05T10:00:00']", "STRING", ["2017-01-05", "2017-01-05T10:00:00"]),
        ("['007', '12']", "STRING", ["007", "12"]),
        ("['0.5', '00.5']", "STRING", ["0.5", "00.5"]),
        ("['+1', '.5']", "STRING", ["+1", ".5"]),
        ("[1, 'a']", "STRING", ["1", "a"]),
        ("[1e21, 0.1, 'x']", "STRING", ["1e+21", "0.1", "x"]),
        ("[true, 1]", "STRING", ["true", "1"]),
        ("[null, '', 4]", "LONG", [None, None, 4]),
        ("[null, '']", "STRING", [None, None]),
        ("[2 ** 60]", "DOUBLE", [float(2**60)]),
    ],
)
def test_magic_parse_infers_the_column_type(
    values: str, expected_type: str, expected: list[JsonValue]
) -> None:
    outcome = run_grid(f"datagrid.magicParseJSON({values}.map((v) => ({{v}})));")
    assert outcome.fatal is None, outcome.fatal
    assert outcome.types == {"v": expected_type}
    assert outcome.finalized() == [[value] for value in expected]


def test_magic_parse_json_of_bad_text_is_a_catchable_error() -> None:
    outcome = run_grid(
        "let caught = null;\n"
        "try { datagrid.magicParseJSON('{nope'); } catch (e) { caught = e.message; }\n"
        "datagrid.magicParseJSON([{caught: caught.slice(0, 45)}]);"
    )
    assert outcome.records() == [{"caught": "datagrid.magicParseJSON: the text is not JSON"}]


@pytest.mark.parametrize(("argument", "error"), [("42", "expects JSON text"), ("[1]", "item 0")])
def test_magic_parse_json_refuses_what_is_not_objects(argument: str, error: str) -> None:
    outcome = run_grid(f"datagrid.magicParseJSON({argument});")
    assert outcome.exception is not None
    assert error in outcome.exception


def test_magic_parse_json_of_empty_text_adds_nothing() -> None:
    outcome = run_grid("datagrid.magicParseJSON(''); datagrid.magicParseJSON('null');")
    assert outcome.fatal is None
    assert (outcome.columns, outcome.rows) == ([], [])


def test_magic_parse_fills_declared_columns_through_their_checks() -> None:
    outcome = run_grid(
        "datagrid.addColumn('when', datagrid.DATA_TYPE_DATE);\n"
        "datagrid.magicParseJSON([{id: 1, when: '2017-01-05'}, {id: 2}]);\n"
        "datagrid.addCell('2017-01-06'); datagrid.addCell(3); datagrid.endRow();\n"
    )
    assert outcome.columns == [{"name": "when", "type": "DATE"}, {"name": "id", "type": "LONG"}]
    assert outcome.finalized() == [["2017-01-05", 1], [None, 2], ["2017-01-06", 3]]


def test_magic_parse_value_bad_for_a_declared_column_is_a_bad_cell() -> None:
    outcome = run_grid(
        "datagrid.addColumn('when', datagrid.DATA_TYPE_DATE);\n"
        "datagrid.magicParseJSON([{id: 1, when: '2017-01-05'}, {id: 2, when: 'soon'}]);\n"
    )
    assert bad_cell(outcome) == "row 2, column 'when' (1): 'soon' is not a DATE (yyyy-MM-dd)"
    assert outcome.fatal is not None
    assert (outcome.fatal["api"], outcome.fatal["line"]) == ("magicParseJSON", 2)


def test_magic_parse_with_a_row_not_ended_is_a_bad_cell() -> None:
    outcome = run_grid(
        "datagrid.addColumn('a'); datagrid.addCell('x'); datagrid.magicParseJSON({a: 1});"
    )
    assert bad_cell(outcome).startswith("row 1, column 'a' (1): the row was not ended")


def test_magic_parse_json_keeps_a_date_object_as_utc_datetime() -> None:
    outcome = run_grid("datagrid.magicParseJSON({t: new Date(Date.UTC(2020, 1, 3, 4, 5, 6))});")
    assert outcome.types == {"t": "DATETIME"}
    assert outcome.finalized() == [["2020-02-03T04:05:06"]]


# --- magicParseCSV ----------------------------------------------------------------------
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("trailing", [True, False])
def test_magic_parse_csv_accepts_every_line_end(end: str, trailing: bool) -> None:
    text = end.join(["id,name,when", "1,Ann,2017-01-05", '2,"Smith, ""Bo""",2017-01-06'])
    text += end if trailing else ""
    outcome = run_grid(f"datagrid.magicParseCSV({json.dumps(text)});")
    assert outcome.types == {"id": "LONG", "name": "STRING", "when": "DATE"}
    assert outcome.finalized() == [[1, "Ann", "2017-01-05"], [2, 'Smith, "Bo"', "2017-01-06"]]


def test_magic_parse_csv_keeps_line_breaks_inside_quotes() -> None:
    text = 'a,b\r\n"line 1\r\nline 2",x\r"cr\rinside",y\n'
    outcome = run_grid(f"datagrid.magicParseCSV({json.dumps(text)});")
    assert outcome.finalized() == [["line 1\r\nline 2", "x"], ["cr\rinside", "y"]]


def test_magic_parse_csv_accumulates_and_infers_like_json() -> None:
    outcome = run_grid(
        "datagrid.magicParseCSV('id,price,code,ok\\n1,2.5,007,true\\n');"
        "datagrid.magicParseCSV('id,extra\\n2,x\\n3,\\n');"
    )
    assert outcome.columns == [
        {"name": "id", "type": "LONG"},
        {"name": "price", "type": "DOUBLE"},
        {"name": "code", "type": "STRING"},
        {"name": "ok", "type": "BOOLEAN"},
        {"name": "extra", "type": "STRING"},
    ]
    assert outcome.finalized() == [
        [1, 2.5, "007", True, None],
        [2, None, None, None, "x"],
        [3, None, None, None, None],
    ]


def test_magic_parse_csv_names_empty_and_repeated_headers() -> None:
    outcome = run_grid("datagrid.magicParseCSV('a,,a,a\\n1,2,3,4\\n');")
    assert [c["name"] for c in outcome.columns] == ["a", "column_2", "a_2", "a_3"]


def test_magic_parse_csv_short_rows_are_padded() -> None:
    outcome = run_grid("datagrid.magicParseCSV('a,b,c\\n1\\n');")
    assert outcome.finalized() == [[1, None, None]]


def test_magic_parse_csv_error_is_catchable_and_named() -> None:
    outcome = run_grid("datagrid.magicParseCSV('a\\n1,2\\n');")
    assert outcome.exception == (
        "Error: datagrid.magicParseCSV: CSV line 2 has 2 fields, more than the 1 of the header"
    )


# --- magicParseXML ----------------------------------------------------------------------
XML = """<?xml version="1.0"?>
<response xmlns:x="urn:x">
  <meta><count>2</count></meta>
  <deals>
    <deal id="1"><name>Big</name><amount>10.5</amount><owner><name>Ann</name></owner></deal>
    <deal id="2"><x:name>Small</x:name><amount>3</amount><closed/></deal>
  </deals>
</response>"""


def test_magic_parse_xml_makes_rows_of_the_first_repeated_elements() -> None:
    outcome = run_grid(f"datagrid.magicParseXML({json.dumps(XML)});")
    assert outcome.columns == [
        {"name": "@id", "type": "LONG"},
        {"name": "name", "type": "STRING"},
        {"name": "amount", "type": "DOUBLE"},
        {"name": "owner.name", "type": "STRING"},
        {"name": "closed", "type": "STRING"},
    ]
    assert outcome.finalized() == [[1, "Big", 10.5, "Ann", None], [2, "Small", 3.0, None, None]]


def test_magic_parse_xml_of_repeated_text_elements_uses_the_tag_as_column() -> None:
    outcome = run_grid("datagrid.magicParseXML('<r><tag>a</tag><tag>b</tag></r>');")
    assert outcome.records() == [{"tag": "a"}, {"tag": "b"}]


def test_magic_parse_xml_without_a_list_is_one_record() -> None:
    outcome = run_grid("datagrid.magicParseXML('<r><user><id>7</id><n>x</n></user></r>');")
    assert outcome.records() == [{"id": 7, "n": "x"}]


def test_magic_parse_xml_with_a_dtd_is_a_catchable_error() -> None:
    text = '<!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>'
    outcome = run_grid(f"datagrid.magicParseXML({json.dumps(text)});")
    assert outcome.exception is not None
    assert outcome.exception.startswith("Error: datagrid.magicParseXML: XML refused")


# --- the Sample CRM process script (shared/seeds/000) as the documentation prints it ---
# The documentation's Sample CRM process script exactly as printed (seed 000).
SAMPLE_CRM_PROCESS = (
    Path(__file__).parent.parent / "scripts" / "samplecrm_process_printed.js"
).read_text(encoding="utf-8")

SAMPLE_CRM_HEADER = (
    "Account.Id,Account.Industry,Account.Name,Amount,CloseDate,CreatedDate,Id,IsClosed,IsWon,"
    "LastActivityDate,LastModifiedDate,LeadSource,Name,NextStep,Probability,StageName,Type,"
    "ForecastCategoryName,Strategic_Account__c,Forecasted_ACV__c,Competitor__c,"
    "Owner.CreatedDate,Owner.Email,Owner.FullPhotoUrl,Owner.Id,Owner.IsActive,Owner.Manager,"
    "Owner.Name,Owner.UserRole.Name"
)
SAMPLE_CRM_ROW = (
    "001A,Energy,Acme,1500.5,2017-01-05,2016-12-01T10:00:00,006A,false,false,2017-01-02,"
    "2016-12-05T11:30:00,Web,Big deal,Call,60,Prospecting,New,Pipeline,true,1200,Globex,"
    "2015-03-04T08:00:00,ann@example.com,https://example.com/p.png,005A,true,Boss,Ann,Sales"
)
SAMPLE_CRM_BODY = SAMPLE_CRM_HEADER + "\r" + SAMPLE_CRM_ROW + "\r" + SAMPLE_CRM_ROW
SAMPLE_CRM_FAKES = f"""
var DOMO = {{ log() {{}}, b64EncodeUnicode(s) {{ return s; }} }};
var console = {{ log() {{}} }};
var metadata = {{ account: {{ username: 'u', password: 'p' }}, report: 'Opportunities' }};
var httprequest = {{
  addHeader() {{}},
  get() {{ return {json.dumps(SAMPLE_CRM_BODY)}; }},
}};
"""


def test_sample_crm_process_script_with_the_corrected_split_succeeds() -> None:
    script = SAMPLE_CRM_PROCESS.replace("split('r')", "split('\\r')")
    outcome = run_grid(script, setup=SAMPLE_CRM_FAKES)
    assert outcome.fatal is None, outcome.fatal
    assert outcome.exception is None
    records = outcome.records()
    assert len(records) == 2
    assert records[0]["Amount"] == 1500.5
    assert records[0]["CloseDate"] == "2017-01-05T00:00:00"
    assert records[0]["Owner.UserRole.Name"] == "Sales"
    assert outcome.types["LastActivityDate"] == "DATETIME"


def test_sample_crm_process_script_as_printed_is_a_bad_cell() -> None:
    outcome = run_grid(SAMPLE_CRM_PROCESS, setup=SAMPLE_CRM_FAKES)
    # split('r') cuts the header at "Indust|ry" and "C|reatedDate": the first "line" after it is
    # "y,Account.Name,Amount,CloseDate,C", so 'CloseDate' lands in the DOUBLE column Amount.
    assert bad_cell(outcome) == (
        "row 1, column 'Amount' (4): 'CloseDate' is not a DOUBLE (a number)"
    )
    assert outcome.fatal is not None
    assert outcome.fatal["line"] == 64  # datagrid.addCell(rows[j])
