// magic.js: the `magicParse*` half of datagrid.js, loaded on a script's first magicParse call
// (most runs never parse, and compiling this on every Context would cost every run).
// It is evaluated by a direct `eval` inside datagrid.js's `gridLoadMagic`, so it shares the
// prelude's scope: it uses datagrid's state and fills in `gridInferCell`, `gridTypeOfKinds`
// and `gridMagic`. Public entry points (`gridMagicJSON`...) stay in datagrid.js, so stack
// traces cut at them point at the script's line.
// Value kinds seen by an inferred column, as bits. Combinations that have no common type
// collapse to STRING, so a STRING column stops classifying its values.
const GRID_K_INT = 1;
const GRID_K_FLOAT = 2;
const GRID_K_BOOL = 4;
const GRID_K_DATE = 8;
const GRID_K_DATETIME = 16;
const GRID_K_STRING = 32;

// JSON number syntax: what `magicParse*` counts as a number in a string ('007' is not one).
const GRID_INT_RE = /^-?(?:0|[1-9]\d*)$/;
const GRID_NUM_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
// What may follow `yyyy-MM-ddTHH:mm:ss` in an inferred DATETIME: a zero fraction and a zone.
// The gateway rewrites such values to UTC `yyyy-MM-ddTHH:mm:ss`; a non-zero fraction would be
// lost, so such a value counts as a STRING.
const GRID_DT_SUFFIX_RE = /^(?:\.0+)?(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?$/;
const GRID_DATETIME_START_RE = new RegExp('^' + GRID_DAY + GRID_TIME);
// --- inference (magicParse* columns) ----------------------------------------------------
function gridJoinKinds(mask, kind) {
  const m = mask | kind;
  return m <= 3 || m === 4 || m === 8 || m === 16 ? m : GRID_K_STRING;
}

function gridTypeOfKindsImpl(mask) {
  if (mask === GRID_K_INT) return 'LONG';
  if (mask === GRID_K_FLOAT || mask === (GRID_K_INT | GRID_K_FLOAT)) return 'DOUBLE';
  if (mask === GRID_K_BOOL) return 'BOOLEAN';
  if (mask === GRID_K_DATE) return 'DATE';
  if (mask === GRID_K_DATETIME) return 'DATETIME';
  return 'STRING';              // also a column of nulls only
}

// The kind of a non-empty string, the same for JSON, CSV and XML values.
function gridKindOf(s) {
  const c = s.charCodeAt(0);
  if (c >= 48 && c <= 57) {
    if (s.length >= 10 && s.charCodeAt(4) === 45) return gridDateKind(s);
    return gridNumberKind(s, c);
  }
  if (c === 45) return gridNumberKind(s, c);
  if ((s.length === 4 || s.length === 5) && (c === 116 || c === 102 || c === 84 || c === 70)) {
    const t = s.toLowerCase();
    if (t === 'true' || t === 'false') return GRID_K_BOOL;
  }
  return GRID_K_STRING;
}

function gridNumberKind(s, first) {
  if (GRID_INT_RE.test(s)) {
    // Digits that may not fit a LONG stay text rather than turn into a rounded DOUBLE.
    const negative = first === 45;
    const digits = negative ? s.length - 1 : s.length;
    if (digits < 19) return GRID_K_INT;
    if (digits > 19) return GRID_K_STRING;
    return (negative ? s.slice(1) <= '9223372036854775808' : s <= '9223372036854775807')
      ? GRID_K_INT : GRID_K_STRING;
  }
  if (GRID_NUM_RE.test(s)) {
    const n = +s;
    return n - n === 0 ? GRID_K_FLOAT : GRID_K_STRING;
  }
  return GRID_K_STRING;
}

function gridDateKind(s) {
  if (s.length === 10) return GRID_DATE_RE.test(s) ? GRID_K_DATE : GRID_K_STRING;
  if (!GRID_DATETIME_START_RE.test(s)) return GRID_K_STRING;
  return s.length === 19 || GRID_DT_SUFFIX_RE.test(s.slice(19)) ? GRID_K_DATETIME : GRID_K_STRING;
}

// Record the kind of v in an inferred column and return the raw cell to keep.
function gridInferCellImpl(col, v) {
  let kind;
  switch (typeof v) {
    case 'string':
      if (v === '') return null;
      gridBytes += v.length;
      if (col.mask !== GRID_K_STRING) col.mask = gridJoinKinds(col.mask, gridKindOf(v));
      return v;
    case 'number':
      if (v - v !== 0) {        // NaN and the infinities have no JSON form: keep their text
        col.mask = GRID_K_STRING;
        return gridString(v);
      }
      kind = gridIsSafeInteger(v) ? GRID_K_INT : GRID_K_FLOAT;
      break;
    case 'boolean':
      kind = GRID_K_BOOL;
      break;
    case 'undefined':
      return null;
    case 'object':
      if (v === null) return null;
      return gridInferCell(col, gridObjectText(v));
    default:                    // functions, symbols, bigints
      return gridInferCell(col, gridString(v));
  }
  const mask = col.mask;
  if ((mask | kind) !== mask && mask !== GRID_K_STRING) col.mask = gridJoinKinds(mask, kind);
  return v;
}

// An object where a single value is needed: a Date as its ISO text (`Z`), other objects
function gridColumnIndex(name) {
  const index = gridIndex.get(name);
  return index === undefined ? gridAppendColumn(name, null, null) : index;
}

// A magicParse call between addCell and endRow cannot know where the open row belongs.
function gridMagicBegin(above) {
  if (gridCur.length > 0) gridUnended(above);
}

function gridMagicValue(row, i, v, above) {
  const col = gridCols[i];
  if (!col.inferred) {
    const cell = col.conv(v);
    if (cell === GRID_BAD) gridBadValue(i, v, above);
    row[i] = cell;
  } else if (typeof v === 'string' && v !== '') {   // all of CSV and XML: inlined
    gridBytes += v.length;
    if (col.mask !== GRID_K_STRING) col.mask = gridJoinKinds(col.mask, gridKindOf(v));
    row[i] = v;
  } else {
    row[i] = gridInferCell(col, v);
  }
}

function gridNewRow() {
  return new GridArray(gridCols.length).fill(null);
}

// Nested objects become `parent.child` columns; arrays become JSON text. The common cases of
// an inferred column (a string, a number) are inlined: this loop is magicParse's hot path.
function gridFlatten(obj, prefix, row, above) {
  const keys = gridKeys(obj);
  for (let j = 0; j < keys.length; j++) {
    const key = keys[j];
    let v = obj[key];
    let t = typeof v;
    if (t === 'object' && v !== null) {
      if (gridIsArray(v)) {
        v = gridStringify(v);
        t = 'string';
      } else if (!(v instanceof GridDate)) {
        gridFlatten(v, prefix + key + '.', row, above);
        continue;
      }
    }
    const name = prefix === '' ? key : prefix + key;
    let i = gridIndex.get(name);
    if (i === undefined) i = gridAppendColumn(name, null, null);
    const col = gridCols[i];
    if (!col.inferred) {
      const cell = col.conv(v);
      if (cell === GRID_BAD) gridBadValue(i, v, above);
      row[i] = cell;
    } else if (t === 'string' && v !== '') {
      gridBytes += v.length;
      if (col.mask !== GRID_K_STRING) col.mask = gridJoinKinds(col.mask, gridKindOf(v));
      row[i] = v;
    } else if (t === 'number' && v - v === 0) {
      const kind = gridIsSafeInteger(v) ? GRID_K_INT : GRID_K_FLOAT;
      const mask = col.mask;
      if ((mask | kind) !== mask && mask !== GRID_K_STRING) col.mask = gridJoinKinds(mask, kind);
      row[i] = v;
    } else {
      row[i] = gridInferCell(col, v);
    }
  }
}

function gridMagicRow(obj, above) {
  const row = gridNewRow();
  gridFlatten(obj, '', row, above);
  gridPushRow(row, above);
}

function gridMagicJSONImpl(x) {
  let data = x;
  if (typeof x === 'string') {
    if (x.trim() === '') return;
    try {
      data = gridParse(x);
    } catch (e) {
      throw scriptError('datagrid.magicParseJSON: the text is not JSON (' + e.message + ')',
        gridMagicJSON);
    }
  }
  gridMagicBegin(gridMagicJSON);
  if (gridIsArray(data)) {
    for (let i = 0; i < data.length; i++) {
      const item = data[i];
      if (item === null || item === undefined) continue;
      if (typeof item !== 'object' || gridIsArray(item)) {
        throw scriptError('datagrid.magicParseJSON: item ' + i + ' of the array is not an object',
          gridMagicJSON);
      }
      gridMagicRow(item, gridMagicJSON);
    }
  } else if (data !== null && typeof data === 'object') {
    gridMagicRow(data, gridMagicJSON);
  } else if (data !== null && data !== undefined) {
    throw scriptError('datagrid.magicParseJSON expects JSON text, an array of objects or an ' +
      'object', gridMagicJSON);
  }
}

// Header names: an empty one becomes `column_N`, a repeated one `name_2`, `name_3`...
function gridCsvNames(header) {
  const seen = new GridMap();
  const names = [];
  for (let j = 0; j < header.length; j++) {
    const base = header[j] === '' ? 'column_' + (j + 1) : header[j];
    let name = base;
    for (let k = 2; seen.has(name); k++) name = base + '_' + k;
    seen.set(name, true);
    names.push(name);
  }
  return names;
}

function gridUtil(op, text, above, what) {
  try {
    return util(op, text === null || text === undefined ? '' : gridString(text), above);
  } catch (e) {
    throw scriptError('datagrid.' + what + ': ' + e.message, above);
  }
}

function gridMagicCSVImpl(text) {
  const table = gridUtil('csv', text, gridMagicCSV, 'magicParseCSV');
  gridMagicBegin(gridMagicCSV);
  if (table.length === 0) return;
  const index = gridCsvNames(table[0]).map(gridColumnIndex);
  for (let r = 1; r < table.length; r++) {
    const cells = table[r];
    const row = gridNewRow();
    for (let j = 0; j < cells.length; j++) gridMagicValue(row, index[j], cells[j], gridMagicCSV);
    gridPushRow(row, gridMagicCSV);
  }
}

// The first list of repeated elements, breadth-first from the root, as [key, items]. Without
// one, the document is one record: the innermost element of its single-child chain.
function gridXmlRecords(doc) {
  const queue = [doc];
  for (let q = 0; q < queue.length; q++) {
    const node = queue[q];
    const keys = gridKeys(node);
    for (let j = 0; j < keys.length; j++) {
      if (gridIsArray(node[keys[j]])) return [keys[j], node[keys[j]]];
    }
    for (let j = 0; j < keys.length; j++) {
      const v = node[keys[j]];
      if (v !== null && typeof v === 'object') queue.push(v);
    }
  }
  let key = null;
  let node = doc;
  for (;;) {
    const keys = gridKeys(node);
    if (keys.length !== 1) break;
    const v = node[keys[0]];
    if (v === null || typeof v !== 'object') break;
    key = keys[0];
    node = v;
  }
  return [key, [node]];
}

function gridMagicXMLImpl(text) {
  const doc = gridUtil('xml', text, gridMagicXML, 'magicParseXML');
  gridMagicBegin(gridMagicXML);
  const [key, items] = gridXmlRecords(doc);
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (item !== null && typeof item === 'object') {
      gridMagicRow(item, gridMagicXML);
    } else {
      // A repeated text-only element (`<tag>a</tag><tag>b</tag>`): one column, its name.
      const row = gridNewRow();
      gridMagicValue(row, gridColumnIndex(key), item, gridMagicXML);
      gridPushRow(row, gridMagicXML);
    }
  }
}

gridInferCell = gridInferCellImpl;
gridTypeOfKinds = gridTypeOfKindsImpl;
gridMagic = { json: gridMagicJSONImpl, csv: gridMagicCSVImpl, xml: gridMagicXMLImpl };
