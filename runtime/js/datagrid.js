// datagrid.js: the `datagrid` global (SPEC 3.2, 4.3). Part of the prelude IIFE after core.js,
// whose scope it shares: it uses `H.emit`, `util`, `fail`, `scriptError`, `bare` and `RUN`, and it
// defines `gridFinish()`, which the run's end calls for the columns and the rows not yet sent.
//
// Rows are kept in a chunk and sent to the gateway with `H.emit` every `RUN.chunkRows` rows
// (or about 4 MB of text). A row may be shorter than the columns: the gateway pads it.
//
// Columns come in two kinds:
// - declared (`addColumn`): every cell is checked and converted at once by the column's
//   converter; a bad value ends the run with `bad_cell`.
// - inferred (`magicParse*`): cells are kept raw (as parsed) and the column only records which
//   kinds of values it saw. The type is decided at the end (`gridFinish`) and the gateway
//   converts the raw cells (`runtime/grid.py`), since earlier chunks are already sent by then.
// A script may mix both: `magicParse*` fills a declared column of the same name through its
// converter and adds an inferred column for every other key; `addCell` into an inferred column
// records the value's kind. `addColumn` is only allowed before the first cell of the run, so a
// declared column never appears after rows that lack it.
//
// The per-cell path is hot (SPEC 10: a million cells per second): converters are chosen once
// per column, signal a bad value by returning GRID_BAD instead of throwing, and use no regex
// for STRING cells.

// Captured now: a sloppy script may declare globals with these names for its own use.
const GridArray = Array;
const GridDate = Date;
const GridMap = Map;
const gridString = String;
const gridBigInt = typeof BigInt === 'function' ? BigInt : null;
const gridIsArray = Array.isArray;
const gridIsInteger = Number.isInteger;
const gridIsSafeInteger = Number.isSafeInteger;
const gridKeys = Object.keys;
const gridStringify = JSON.stringify;
const gridParse = JSON.parse;

const GRID_BAD = Object.freeze({});            // a converter's "not a valid value"
const GRID_CHUNK_BYTES = 4 * 1024 * 1024;       // send a chunk early when its text gets large
const GRID_LONG_MAX = 9223372036854775808;      // 2**63: LONG is a signed 64-bit integer
const GRID_SHOW_MAX = 100;                      // characters of a bad value shown in a message

const GRID_DIGITS_RE = /^[+-]?\d+$/;

// --- state of the run -------------------------------------------------------------------
const gridCols = [];            // {name, type, conv, inferred, mask}
const gridConvs = [];           // gridCols[i].conv, for the addCell fast path
const gridNames = bare([]);     // gridCols[i].name, sent with every chunk
const gridIndex = new GridMap(); // name -> column index
let gridCur = [];               // cells of the row being built by addCell
let gridChunk = bare([]);       // ended rows not sent yet (bare rows: see core.js `bare`)
let gridBytes = 0;              // rough size of gridChunk's text
let gridTotal = 0;              // rows ended so far in the run

// --- values of declared columns ---------------------------------------------------------
function gridToString(v) {
  if (typeof v === 'string') {
    if (v === '') return null;
    gridBytes += v.length;
    return v;
  }
  if (v === null || v === undefined) return null;
  const s = gridString(v);      // numbers, booleans, objects: the JavaScript way
  gridBytes += s.length;
  return s;
}

// A string as a number the JavaScript way (`Number(s)`, so surrounding blanks are allowed);
// a blank string is null, anything that is not a finite number is bad.
function gridNumberOf(s) {
  if (s === '') return null;
  const n = +s;
  if (n - n !== 0) return GRID_BAD;
  if (n === 0 && s.trim() === '') return null;
  return n;
}

function gridToDouble(v) {
  if (typeof v === 'number') return v - v === 0 ? v : GRID_BAD;
  if (typeof v === 'string') return gridNumberOf(v);
  if (v === null || v === undefined) return null;
  return GRID_BAD;              // booleans, objects
}

function gridIsLong(n) {
  return gridIsInteger(n) && n < GRID_LONG_MAX && n >= -GRID_LONG_MAX;
}

function gridToLong(v) {
  if (typeof v === 'number') {
    if (gridIsSafeInteger(v)) return v;
    // JSON writes 2**60 as 1152921504606847000: send the exact digits instead.
    return gridIsLong(v) && gridBigInt !== null ? gridString(gridBigInt(v)) : GRID_BAD;
  }
  if (typeof v === 'string') {
    const n = gridNumberOf(v);
    if (n === null || n === GRID_BAD) return n;
    if (gridIsSafeInteger(n)) return n;
    return gridLongDigits(v, n);
  }
  if (v === null || v === undefined) return null;
  return GRID_BAD;
}

// A string of digits beyond 2**53 stays a decimal string so the gateway gets it exactly
// (numbers cross as JSON, and a double would round it).
function gridLongDigits(s, n) {
  const t = s.trim();
  if (gridBigInt !== null && GRID_DIGITS_RE.test(t)) {
    const big = gridBigInt(t);
    const max = gridBigInt('9223372036854775807');
    if (big > max || big < -max - gridBigInt(1)) return GRID_BAD;
    return gridString(big);
  }
  return gridIsLong(n) ? n : GRID_BAD;
}

function gridToBoolean(v) {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const t = v.trim().toLowerCase();
    if (t === 'true') return true;
    if (t === 'false') return false;
    return t === '' ? null : GRID_BAD;
  }
  if (v === null || v === undefined) return null;
  return GRID_BAD;
}

function gridToDate(v) {
  if (typeof v === 'string') {
    if (v === '') return null;
    return GRID_DATE_RE.test(v) ? v : GRID_BAD;
  }
  if (v === null || v === undefined) return null;
  return v instanceof GridDate ? gridFormatDate(v, 10) : GRID_BAD;
}

function gridToDatetime(v) {
  if (typeof v === 'string') {
    if (v === '') return null;
    return GRID_DATETIME_RE.test(v) ? v : GRID_BAD;
  }
  if (v === null || v === undefined) return null;
  return v instanceof GridDate ? gridFormatDate(v, 19) : GRID_BAD;
}

// A Date object in UTC, cut to `yyyy-MM-dd` (10) or `yyyy-MM-ddTHH:mm:ss` (19).
function gridFormatDate(d, length) {
  const year = d.getUTCFullYear();
  if (year !== year || year < 1 || year > 9999) return GRID_BAD;
  return d.toISOString().slice(0, length);
}

// --- dates and times ------------------------------------------------------------------
// One regex checks the digits and the calendar (month lengths, leap days, years 1 to 9999):
// in QuickJS a `test` is cheaper than the few `charCodeAt` calls the same check would take.
const GRID_DAY = '(?!0000)(?:\\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\\d|2[0-8])|' +
  '(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|' +
  '(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)';
const GRID_TIME = 'T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d';
const GRID_DATE_RE = new RegExp('^' + GRID_DAY + '$');
const GRID_DATETIME_RE = new RegExp('^' + GRID_DAY + GRID_TIME + '$');

// --- column types -----------------------------------------------------------------------
const GRID_TYPES = Object.freeze({
  __proto__: null,
  STRING: { conv: gridToString, format: 'text' },
  DOUBLE: { conv: gridToDouble, format: 'a number' },
  LONG: { conv: gridToLong, format: 'an integer' },
  DATE: { conv: gridToDate, format: 'yyyy-MM-dd' },
  DATETIME: { conv: gridToDatetime, format: "yyyy-MM-dd'T'HH:mm:ss" },
  BOOLEAN: { conv: gridToBoolean, format: 'true or false' },
});

// (arrays) as JSON.
function gridObjectText(v) {
  if (v instanceof GridDate) return v.getTime() === v.getTime() ? v.toISOString() : null;
  const text = gridStringify(v);
  return text === undefined ? null : text;
}

// --- columns ----------------------------------------------------------------------------
function gridAppendColumn(name, type, conv) {
  const col = { name, type, conv, inferred: type === null, mask: 0 };
  if (col.inferred) col.conv = (v) => gridInferCell(col, v);
  gridIndex.set(name, gridCols.length);
  gridCols.push(col);
  gridConvs.push(col.conv);
  gridNames[gridNames.length] = name;
  return gridCols.length - 1;
}


// --- messages ---------------------------------------------------------------------------
function gridShow(v) {
  let text;
  if (typeof v === 'string') {
    text = v.length > GRID_SHOW_MAX ? v.slice(0, GRID_SHOW_MAX) + '…' : v;
    return "'" + text + "'";
  }
  if (v instanceof GridDate) text = 'Date(' + (gridObjectText(v) || 'Invalid Date') + ')';
  else if (v !== null && typeof v === 'object') {
    try { text = gridStringify(v); } catch (e) { text = undefined; }
    if (text === undefined) text = gridString(v);
  } else text = gridString(v);
  return text.length > GRID_SHOW_MAX ? text.slice(0, GRID_SHOW_MAX) + '…' : text;
}

function gridColumnLabel(i) {
  return "column '" + gridCols[i].name + "' (" + (i + 1) + ')';
}

function gridRowLabel() {
  return 'row ' + (gridTotal + 1);
}

function gridBadCell(message, above) {
  fail('error', 'bad_cell', message, above);
}

function gridBadValue(i, v, above) {
  const col = gridCols[i];
  gridBadCell(gridRowLabel() + ', ' + gridColumnLabel(i) + ': ' + gridShow(v) + ' is not a ' +
    col.type + ' (' + GRID_TYPES[col.type].format + ')', above);
}

function gridUnended(above) {
  gridBadCell(gridRowLabel() + ', ' + gridColumnLabel(gridCur.length - 1) +
    ': the row was not ended (call datagrid.endRow() after its last cell)', above);
}

// --- rows -------------------------------------------------------------------------------
function gridPushRow(row, above) {
  gridChunk[gridChunk.length] = bare(row);
  gridTotal++;
  gridBytes += row.length * 4;
  const limit = RUN.resultRows;
  if (typeof limit === 'number' && gridTotal > limit) {
    fail('error', 'result_limit', 'the result has more than ' + limit + ' rows', above);
  }
  if (gridChunk.length >= RUN.chunkRows || gridBytes >= GRID_CHUNK_BYTES) gridFlush();
}

function gridFlush() {
  const rows = gridChunk;
  gridChunk = bare([]);
  gridBytes = 0;
  H.emit(gridStringify(bare({ columns: gridNames, rows })));
}

// --- the public functions ---------------------------------------------------------------
function gridAddColumn(name, type) {
  const label = gridString(name);
  const position = gridCols.length + 1;
  const where = "column '" + label + "' (" + position + ')';
  const typeName = type === undefined || type === null ? 'STRING' : gridString(type).toUpperCase();
  const spec = GRID_TYPES[typeName];
  if (gridTotal > 0 || gridCur.length > 0) {
    gridBadCell(gridRowLabel() + ', ' + where +
      ': columns must be added before the first cell', gridAddColumn);
  }
  if (label === '') gridBadCell(where + ': a column needs a name', gridAddColumn);
  if (spec === undefined) {
    gridBadCell(where + ": unknown type '" + gridString(type) + "' (use datagrid.DATA_TYPE_" +
      'STRING, _DOUBLE, _LONG, _DATE, _DATETIME or _BOOLEAN)', gridAddColumn);
  }
  const existing = gridIndex.get(label);
  if (existing !== undefined) {
    gridBadCell(where + ': the name is already used by column ' + (existing + 1), gridAddColumn);
  }
  gridAppendColumn(label, typeName, spec.conv);
}

function gridAddCell(value) {
  const i = gridCur.length;
  if (i < gridConvs.length) {
    const cell = gridConvs[i](value);
    if (cell !== GRID_BAD) {
      gridCur[i] = cell;
      return;
    }
    gridBadValue(i, value, gridAddCell);
  }
  if (i === 0) {
    gridBadCell(gridRowLabel() + ', column 1: no column is defined (call datagrid.addColumn ' +
      'before datagrid.addCell)', gridAddCell);
  }
  gridBadCell(gridRowLabel() + ', column ' + (i + 1) + ': more cells than the ' + i +
    ' columns (the extra value is ' + gridShow(value) + ')', gridAddCell);
}

function gridEndRow() {
  if (gridCols.length === 0) {
    gridBadCell(gridRowLabel() + ': no column is defined (call datagrid.addColumn first)',
      gridEndRow);
  }
  const row = gridCur;
  gridCur = [];
  gridPushRow(row, gridEndRow);
}

function gridError(code, message) {
  // The code crosses as JSON unchanged when it is a string or an integer. With one argument,
  // datagrid.error('text'), the text is also the message.
  const kept = typeof code === 'string' || gridIsInteger(code) ? code : gridString(code);
  fail('failed', kept, gridString(message === undefined ? code : message), gridError);
}
// --- magicParse*: compiled on first use (runtime/js/lazy/magic.js) ---------------------
// Until then no column is inferred, so nothing else needs these.
let gridInferCell = null;
let gridTypeOfKinds = null;
let gridMagic = null;

function gridLoadMagic() {
  // A direct eval: the loaded code shares this scope (datagrid's state and helpers).
  if (gridMagic === null) eval(H.source('magic'));
  return gridMagic;
}

function gridMagicJSON(x) { return gridLoadMagic().json(x); }
function gridMagicCSV(text) { return gridLoadMagic().csv(text); }
function gridMagicXML(text) { return gridLoadMagic().xml(text); }

// Called once after the script: the final columns (inferred types decided now) and the rows
// not sent yet. An open row is a bad cell.
function gridFinish() {
  if (gridCur.length > 0) gridUnended(gridFinish);
  const columns = bare([]);
  for (let i = 0; i < gridCols.length; i++) {
    const col = gridCols[i];
    columns[i] = bare({ name: col.name, type: col.inferred ? gridTypeOfKinds(col.mask) : col.type });
  }
  const rows = gridChunk;
  gridChunk = bare([]);
  gridBytes = 0;
  return { columns, rows };
}

Object.defineProperty(globalThis, 'datagrid', {
  value: {
    DATA_TYPE_STRING: 'STRING',
    DATA_TYPE_DOUBLE: 'DOUBLE',
    DATA_TYPE_LONG: 'LONG',
    DATA_TYPE_DATE: 'DATE',
    DATA_TYPE_DATETIME: 'DATETIME',
    DATA_TYPE_BOOLEAN: 'BOOLEAN',
    addColumn: gridAddColumn,
    addCell: gridAddCell,
    endRow: gridEndRow,
    error: gridError,
    magicParseJSON: gridMagicJSON,
    magicParseCSV: gridMagicCSV,
    magicParseXML: gridMagicXML,
  },
  writable: true,
  configurable: true,
  enumerable: false,
});
