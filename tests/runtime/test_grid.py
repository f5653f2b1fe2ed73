"""`finalize_rows`: raw datagrid cells to their columns' final types."""

from __future__ import annotations

import json
import random
import struct

import pytest
import quickjs

from runtime.grid import finalize_rows, js_number_text
from runtime.model import Column, ColumnType, JsonValue


def make_columns(*types: ColumnType) -> list[Column]:
    return [Column(name=f"c{i}", type=t) for i, t in enumerate(types)]


def finalize_one(column_type: ColumnType, value: JsonValue) -> JsonValue:
    return finalize_rows(make_columns(column_type), [[value]])[0][0]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5, "5"),
        (5.0, "5"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1.5, "1.5"),
        (100.0, "100"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        (1.2345e21, "1.2345e+21"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (-2.5e-10, "-2.5e-10"),
        (2.0**53, "9007199254740992"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_js_number_text_formats_like_javascript(value: float, text: str) -> None:
    assert js_number_text(value) == text


def test_js_number_text_agrees_with_quickjs_on_random_doubles() -> None:
    rng = random.Random(20240501)
    values = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(2000)]
    values += [rng.uniform(-1e6, 1e6) for _ in range(1000)]
    values += [float(rng.randint(-(2**60), 2**60)) for _ in range(500)]
    values += [rng.randint(1, 10**6) / 10 ** rng.randint(0, 12) for _ in range(500)]
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    context = quickjs.Context()
    js_texts = json.loads(
        context.eval(f"JSON.stringify(JSON.parse({json.dumps(json.dumps(finite))}).map(String))")
    )
    assert [js_number_text(v) for v in finite] == js_texts


def test_rows_are_padded_to_the_column_count() -> None:
    columns = make_columns(ColumnType.STRING, ColumnType.LONG, ColumnType.DATE)
    assert finalize_rows(columns, [["a"], [], ["b", 2, "2017-01-05"]]) == [
        ["a", None, None],
        [None, None, None],
        ["b", 2, "2017-01-05"],
    ]


def test_a_row_longer_than_the_columns_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^a row has 2 cells but there are 1 columns$"):
        finalize_rows(make_columns(ColumnType.STRING), [["a", "b"]])


@pytest.mark.parametrize(
    ("column_type", "raw", "expected"),
    [
        (ColumnType.LONG, 42, 42),
        (ColumnType.LONG, "42", 42),
        (ColumnType.LONG, "9223372036854775807", 9223372036854775807),
        (ColumnType.LONG, 2**40, 2**40),
        (ColumnType.LONG, 7.0, 7),
        (ColumnType.DOUBLE, 3, 3.0),
        (ColumnType.DOUBLE, 2.5, 2.5),
        (ColumnType.DOUBLE, "-1e3", -1000.0),
        (ColumnType.DOUBLE, "0.1", 0.1),
        (ColumnType.BOOLEAN, True, True),
        (ColumnType.BOOLEAN, False, False),
        (ColumnType.BOOLEAN, "true", True),
        (ColumnType.BOOLEAN, "False", False),
        (ColumnType.STRING, "x", "x"),
        (ColumnType.STRING, 5, "5"),
        (ColumnType.STRING, 1e21, "1e+21"),
        (ColumnType.STRING, 0.1, "0.1"),
        (ColumnType.STRING, 2.0, "2"),
        (ColumnType.STRING, True, "true"),
        (ColumnType.STRING, False, "false"),
        (ColumnType.DATE, "2017-01-05", "2017-01-05"),
        (ColumnType.DATETIME, "2017-01-05T10:00:00", "2017-01-05T10:00:00"),
    ],
)
def test_cells_become_their_column_type(
    column_type: ColumnType, raw: JsonValue, expected: JsonValue
) -> None:
    result = finalize_one(column_type, raw)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("column_type", list(ColumnType))
def test_null_stays_null(column_type: ColumnType) -> None:
    assert finalize_one(column_type, None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2017-01-05T10:00:00Z", "2017-01-05T10:00:00"),
        ("2017-01-05T10:00:00.000Z", "2017-01-05T10:00:00"),
        ("2017-01-05T10:00:00.0", "2017-01-05T10:00:00"),
        ("2017-01-05T01:00:00+02:00", "2017-01-04T23:00:00"),
        ("2017-01-05T23:00:00-0130", "2017-01-06T00:30:00"),
        ("2017-01-05T10:00:00.000-00:00", "2017-01-05T10:00:00"),
        ("0999-06-01T00:00:00Z", "0999-06-01T00:00:00"),
        # Not normalisable without losing something: left as they are.
        ("2017-01-05T10:00:00.5Z", "2017-01-05T10:00:00.5Z"),
        ("0001-01-01T00:30:00+01:00", "0001-01-01T00:30:00+01:00"),
    ],
)
def test_inferred_datetimes_with_a_zone_are_rewritten_to_utc(raw: str, expected: str) -> None:
    assert finalize_one(ColumnType.DATETIME, raw) == expected


@pytest.mark.parametrize(
    ("column_type", "raw"),
    [
        (ColumnType.LONG, 1.5),
        (ColumnType.LONG, True),
        (ColumnType.LONG, "x"),
        (ColumnType.DOUBLE, True),
        (ColumnType.DOUBLE, "x"),
        (ColumnType.BOOLEAN, "yes"),
        (ColumnType.BOOLEAN, 1),
        (ColumnType.STRING, [1]),
        (ColumnType.DATE, 5),
        (ColumnType.DATETIME, 5),
    ],
)
def test_a_cell_that_cannot_have_the_type_is_an_error(
    column_type: ColumnType, raw: JsonValue
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - messages differ by type
        finalize_one(column_type, raw)


def test_finalize_accepts_any_iterable_of_rows() -> None:
    columns = make_columns(ColumnType.DOUBLE)
    assert finalize_rows(columns, iter([[1], [2]])) == [[1.0], [2.0]]
