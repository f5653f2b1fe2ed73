"""Final conversion of a run's datagrid rows, once the column types are known.

`datagrid` sends rows in chunks while the script runs, but a `magicParse*` column's type is
decided only at the end (over every value it saw), so its cells travel raw: JS numbers,
booleans and strings as parsed. `finalize_rows` turns every cell into its column's final type.
Declared (`addColumn`) columns were checked in the worker already; converting them again is
harmless and gives DOUBLE cells their float type (JSON writes `3.0` as `3`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from math import isinf, isnan
from typing import Final

from runtime.model import Column, ColumnType, JsonValue

_Converter = Callable[[JsonValue], JsonValue]

_DATETIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"
_DATETIME_SUFFIX: Final = re.compile(
    r"(?:\.(?P<fraction>\d+))?(?:Z|(?P<sign>[+-])(?P<hours>\d\d):?(?P<minutes>\d\d))?"
)


def js_number_text(value: float) -> str:
    """Format a number as JavaScript's `String(value)` does (`1e+21`, `0.1`, `5`, `-1e-7`)."""
    if isnan(value):
        return "NaN"
    if isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"  # also -0, as in JavaScript
    if value < 0:
        return "-" + js_number_text(-value)
    # repr gives the shortest digits that round-trip, as ECMAScript's Number::toString wants.
    _, digit_tuple, exponent = Decimal(repr(float(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)  # a finite number
    k = len(digits)
    # value = digits * 10**(n - k), in ECMAScript's terms
    n = exponent + len(digit_tuple)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{sign}{abs(e)}"


def _to_string(value: JsonValue) -> JsonValue:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return js_number_text(value)
    raise ValueError(f"a STRING cell cannot be {type(value).__name__}")


def _to_long(value: JsonValue) -> JsonValue:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        return int(value)  # digit strings beyond 2**53 travel as text to stay exact
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{value!r} is not a LONG")


def _to_double(value: JsonValue) -> JsonValue:
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, int | str) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{value!r} is not a DOUBLE")


def _to_boolean(value: JsonValue) -> JsonValue:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{value!r} is not a BOOLEAN")


def _to_date(value: JsonValue) -> JsonValue:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not a DATE")


def _to_datetime(value: JsonValue) -> JsonValue:
    if value is None or (isinstance(value, str) and len(value) == 19):
        return value
    if isinstance(value, str):
        return _utc_datetime(value)
    raise ValueError(f"{value!r} is not a DATETIME")


def _utc_datetime(text: str) -> str:
    """`yyyy-MM-ddTHH:mm:ss[.000][Z|±HH:MM|±HHMM]` as UTC `yyyy-MM-ddTHH:mm:ss`.

    The worker infers DATETIME only for a zero fraction, so nothing is lost. Anything else is
    returned unchanged.
    """
    match = _DATETIME_SUFFIX.fullmatch(text, 19)
    if match is None or (match["fraction"] or "0").strip("0"):
        return text
    base = text[:19]
    if match["sign"] is None:
        return base
    offset = timedelta(hours=int(match["hours"]), minutes=int(match["minutes"]))
    try:
        moment = datetime.strptime(base, _DATETIME_FORMAT)
        utc = moment - offset if match["sign"] == "+" else moment + offset
    except (ValueError, OverflowError):
        return text
    return utc.isoformat(timespec="seconds")


def _identity(value: JsonValue) -> JsonValue:
    return value


_CONVERTERS: Final[dict[ColumnType, _Converter]] = {
    ColumnType.STRING: _to_string,
    ColumnType.LONG: _to_long,
    ColumnType.DOUBLE: _to_double,
    ColumnType.DECIMAL: _identity,  # datagrid never makes DECIMAL columns
    ColumnType.DATE: _to_date,
    ColumnType.DATETIME: _to_datetime,
    ColumnType.BOOLEAN: _to_boolean,
}


def finalize_rows(
    columns: Sequence[Column], rows: Iterable[list[JsonValue]]
) -> list[list[JsonValue]]:
    """Pad every row with nulls to the column count and convert its cells to the final types.

    LONG cells become `int`, DOUBLE `float`, BOOLEAN `bool` (from JS booleans or the strings
    "true"/"false"), STRING `str` (numbers and booleans as JavaScript's `String(x)` writes
    them); DATE and DATETIME stay strings, an inferred DATETIME with a zone rewritten to UTC.
    Null stays null.

    Raises:
        ValueError: a cell cannot have its column's type, or a row has more cells than there
            are columns (the worker never sends either).
    """
    converters = [_CONVERTERS[column.type] for column in columns]
    width = len(converters)
    out: list[list[JsonValue]] = []
    for row in rows:
        missing = width - len(row)
        if missing < 0:
            raise ValueError(f"a row has {len(row)} cells but there are {width} columns")
        cells = [*row, *([None] * missing)] if missing else row
        out.append([convert(cell) for convert, cell in zip(converters, cells, strict=True)])
    return out
