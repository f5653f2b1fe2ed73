// datasets.js: what writeback scripts add to the globals (docs/decisions/0023-script-data.md):
// DOMO's dataset functions with pages, `sql` and `aws`. Every one is a host call; the gateway
// applies the run's rights, the SQL sandbox and the egress policy.

const PAGE_ROWS = 10000;

// A number stays a number; anything else crosses as text, and the host names the bad value.
function countArg(value) {
  const number = Number(value);
  return typeof value !== 'object' && Number.isFinite(number) ? number : str(value);
}

function pageArgs(id, sql, options) {
  const args = { id: str(id), sql: str(sql), offset: 0, limit: null };
  if (options !== null && typeof options === 'object') {
    if (options.offset !== undefined && options.offset !== null) args.offset = countArg(options.offset);
    if (options.limit !== undefined && options.limit !== null) args.limit = countArg(options.limit);
  }
  return args;
}

function columnNames(columns) {
  const names = [];
  for (let i = 0; i < columns.length; i++) names[i] = columns[i].name;
  return names;
}

// `{columns: [names], rows: [[...]]}`: every row (up to the host's cap), or with
// `{offset, limit}` that page alone; `more` says whether rows follow it.
function queryData(id, sql, options, above) {
  const page = hostCall('dataset.query', pageArgs(id, sql, options), above);
  return { columns: columnNames(page.columns), rows: page.rows, more: page.more };
}

// Pages of `{columns, rows, offset}` in order, read from one execution of the query: a
// writeback of millions of rows holds one page at a time.
function* queryPages(id, sql, options) {
  const args = pageArgs(id, sql, options);
  if (args.limit === null) args.limit = PAGE_ROWS;
  let names = null;
  for (;;) {
    const page = hostCall('dataset.query', args);
    if (names === null) names = columnNames(page.columns);
    if (page.rows.length) yield { columns: names, rows: page.rows, offset: args.offset };
    if (!page.more) return;
    args.offset += page.rows.length;
  }
}

function getDataset(id) {
  const found = hostCall('dataset.get', { id: str(id) }, DOMO.getDataset);
  const dataset = {
    id: found.id,
    name: found.name,
    rowCount: found.rowCount,
    columns: found.columns,
    queryData(sql, options) { return queryData(found.id, sql, options, dataset.queryData); },
    queryPages(sql, options) { return queryPages(found.id, sql, options); },
  };
  return dataset;
}

DOMO.listDatasets = function listDatasets() {
  return hostCall('dataset.list', {}, DOMO.listDatasets);
};
DOMO.getDataset = getDataset;
DOMO.queryData = function (id, sql, options) { return queryData(id, sql, options, DOMO.queryData); };
DOMO.queryPages = function (id, sql, options) { return queryPages(id, sql, options); };

// --- sql --------------------------------------------------------------------------------
function sqlCall(op, args, above) {
  return hostCall('sql.' + op, args, above);
}

// Rows and values cross as JSON, so a script's objects arrive as their JSON would read.
function jsonValue(value) {
  if (value === undefined) return null;
  const text = stringify(value);
  return text === undefined ? null : parse(text);
}

const sql = {
  createTable(name, columns) {
    return sqlCall('createTable', { table: str(name), columns: jsonValue(columns) }, sql.createTable);
  },
  insert(name, rows) {
    return sqlCall('insert', { table: str(name), rows: jsonValue(rows) }, sql.insert);
  },
  select(name, where) {
    return sqlCall('select', { table: str(name), where: jsonValue(where) }, sql.select);
  },
  update(name, values, where) {
    return sqlCall('update', { table: str(name), values: jsonValue(values), where: jsonValue(where) },
      sql.update);
  },
  delete(name, where) {
    return sqlCall('delete', { table: str(name), where: jsonValue(where) }, sql.delete);
  },
  export(name) {
    return sqlCall('export', { table: str(name) }, sql.export);
  },
};
install('sql', sql);

// --- aws --------------------------------------------------------------------------------
const AWS = { current: null };

function endpointOf(options) {
  if (typeof options === 'string') return options;
  if (options !== null && typeof options === 'object' && options.endpoint) return str(options.endpoint);
  return null;
}

function awsCall(client, op, path, name, value, above) {
  if (client === null) throw scriptError('call aws.createClient(region, key, secret) first', above);
  const args = {
    region: client.region, key: client.key, secret: client.secret, endpoint: client.endpoint,
    path: str(path), name: str(name),
  };
  if (op === 'aws.put') args.value = bodyText(value) ?? '';
  return hostCall(op, args, above);
}

const aws = {
  createClient(region, key, secret, options) {
    const client = { region: str(region), key: str(key), secret: str(secret), endpoint: endpointOf(options) };
    hostCall('aws.client', { secret: client.secret }, aws.createClient);
    AWS.current = client;
    const handle = {
      put(path, name, value) { return awsCall(client, 'aws.put', path, name, value, handle.put); },
      get(path, name) { return awsCall(client, 'aws.get', path, name, undefined, handle.get); },
    };
    return handle;
  },
  put(path, name, value) { return awsCall(AWS.current, 'aws.put', path, name, value, aws.put); },
  get(path, name) { return awsCall(AWS.current, 'aws.get', path, name, undefined, aws.get); },
};
install('aws', aws);
