"""The connector scripts the benchmark runs (plain JavaScript, as a connector author writes it)."""

from __future__ import annotations

from typing import Final

INGEST_COLUMNS: Final = 10
INGEST_ROWS: Final = 100_000
INGEST_CELLS: Final = INGEST_COLUMNS * INGEST_ROWS

INGEST_SCRIPT: Final = f"""
var COLUMNS = {INGEST_COLUMNS}, ROWS = {INGEST_ROWS};
var WORDS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta'];
for (var c = 0; c < COLUMNS; c++) {{
  datagrid.addColumn('col' + c,
    c % 2 === 0 ? datagrid.DATA_TYPE_STRING : datagrid.DATA_TYPE_DOUBLE);
}}
for (var r = 0; r < ROWS; r++) {{
  for (var c = 0; c < COLUMNS; c++) {{
    datagrid.addCell(c % 2 === 0 ? WORDS[(r + c) % 7] : r * 0.5 + c);
  }}
  datagrid.endRow();
}}
"""
"""5 STRING and 5 DOUBLE columns, 100,000 rows: 1,000,000 `addCell` calls."""

MAGIC_ROWS: Final = 100_000
PARSE_MS_PREFIX: Final = "parse_ms="


def magic_script(page: int) -> str:
    """Build 100,000 flat 5-key objects as JSON text in pages of `page`; parse each page.

    The script logs the milliseconds spent inside `magicParseJSON` (rows sent included).
    """
    return f"""
var ROWS = {MAGIC_ROWS}, PAGE = {page}, parseMs = 0;
var now = typeof performance === 'object' ? function () {{ return performance.now(); }} : Date.now;
for (var start = 0; start < ROWS; start += PAGE) {{
  var items = [], end = Math.min(ROWS, start + PAGE);
  for (var r = start; r < end; r++) {{
    items.push({{ id: r, name: 'item-' + r, price: r * 0.25, active: r % 2 === 0,
      created: '2024-01-15' }});
  }}
  var text = JSON.stringify(items);
  var t0 = now();
  datagrid.magicParseJSON(text);
  parseMs += now() - t0;
}}
console.log('{PARSE_MS_PREFIX}' + parseMs);
"""
