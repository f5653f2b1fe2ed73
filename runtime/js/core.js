// core.js: the first part of the prelude IIFE (see docs/decisions/0002-host-call-protocol.md).
// It captures the host callables, removes them from the script's reach, and defines the
// shared helpers and the globals `metadata`, `auth`, `httprequest`, `DOMO`, `discovery`,
// `console`. Every other prelude file shares this scope.

const H = {
  host: __gw_host,
  log: __gw_log,
  emit: __gw_emit,
  fatal: __gw_fatal,
  sleep: __gw_sleep,
  util: __gw_util,
  source: __gw_source,
};
for (const name of ['__gw_host', '__gw_log', '__gw_emit', '__gw_fatal', '__gw_sleep',
  '__gw_util', '__gw_source']) {
  delete globalThis[name];
}

// Captured before any script runs: a script may replace the globals for its own run only.
const stringify = JSON.stringify;
const parse = JSON.parse;
const captureStackTrace = Error.captureStackTrace;
const defineProperty = Object.defineProperty;
const setPrototypeOf = Object.setPrototypeOf;
const toStr = String;
const HOST_CODE = Symbol('hostCode');

// What the prelude hands to `stringify` for the gateway is built of these: objects and arrays
// without a prototype, so a `toJSON` or getter the script puts on Object.prototype or
// Array.prototype is never called, and their values are primitives or bare values themselves
// (docs/decisions/0009-worker-frames.md).
function bare(value) {
  return setPrototypeOf(value, null);
}

const RUN = {
  lineOffset: 0,  // the script is evaluated after this many blank lines (see lineOf)
  mode: 'process',
  chunkRows: 10000,
  resultRows: 10000,
  ended: false,   // a result was already reported (datagrid.error, bad_cell, a cap)
  finishing: false,  // the script is over: errors now have no script line
  error: null,
  auth: null,
};

// Every piece of code is named `<input>`: the prelude and the lazy files span lines 1 to
// RUN.lineOffset, and the script is evaluated after RUN.lineOffset blank lines, so the first
// frame past that line is the script's, however deep in the prelude an error was thrown.
const FRAME_LINES = /\(<input>:(\d+):\d+\)/g;

function lineOf(err) {
  if (RUN.finishing) return null;
  const stack = err && typeof err === 'object' ? toStr(err.stack || '') : '';
  // A frame is `at name (<input>:line:column)`. A bare `at <input>:line:column` is a source
  // position: the script's own parse error, or the position inside a JSON text.
  if (isParseError(err)) {
    const match = /<input>:(\d+)/.exec(stack);
    return match ? scriptLine(Number(match[1])) : null;
  }
  FRAME_LINES.lastIndex = 0;
  for (let match = FRAME_LINES.exec(stack); match; match = FRAME_LINES.exec(stack)) {
    const line = scriptLine(Number(match[1]));
    if (line !== null) return line;
  }
  return null;
}

function scriptLine(line) {
  return line > RUN.lineOffset ? line - RUN.lineOffset : null;
}

// A catchable Error whose stack (and so its line) starts at the script frame calling `above`.
function scriptError(message, above) {
  const error = new Error(message);
  if (captureStackTrace && above) captureStackTrace(error, above);
  return error;
}

// End the run now: report the result at once (first error wins) and unwind the script.
// A script that catches the Error keeps running with every host call refused, until it
// ends or its deadline kills the worker.
function fail(status, code, message, above) {
  const error = scriptError(message, above);
  if (!RUN.ended) {
    RUN.ended = true;
    H.fatal(stringify(bare({
      status, auth: null, error: bare({ code, message, line: lineOf(error) }),
      columns: bare([]), rows: bare([]), discovery: null,
    })));
  }
  throw error;
}

function util(op, arg, above) {
  const reply = parse(H.util(op, stringify(arg)));
  if (reply.error !== undefined) throw scriptError(reply.error, above || util);
  return reply.ok;
}

function hostCall(op, args, above) {
  const reply = parse(H.host(op, stringify(bare(args))));
  if (reply.error) {
    const error = scriptError(reply.error.message, above);
    error[HOST_CODE] = reply.error.code;
    throw error;
  }
  return reply.ok;
}

function str(value) {
  return value === undefined || value === null ? '' : toStr(value);
}

function install(name, value) {
  defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

// --- auth -------------------------------------------------------------------------------
install('auth', {
  authenticationSuccess() {
    if (!RUN.auth) RUN.auth = { success: true, message: null };
  },
  authenticationFailed(message) {
    if (!RUN.auth) RUN.auth = { success: false, message: message === undefined ? null : str(message) };
  },
});

// --- httprequest ------------------------------------------------------------------------
const HTTP = { headers: [], params: [], status: 0, responseHeaders: [] };

function headerIndex(list, name) {
  const wanted = str(name).toLowerCase();
  for (let i = 0; i < list.length; i++) if (list[i][0].toLowerCase() === wanted) return i;
  return -1;
}

function withParameters(url) {
  if (!HTTP.params.length) return url;
  const query = HTTP.params.map(
    ([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v)).join('&');
  const hash = url.indexOf('#');
  const base = hash < 0 ? url : url.slice(0, hash);
  const fragment = hash < 0 ? '' : url.slice(hash);
  const sep = base.indexOf('?') < 0 ? '?' : (/[?&]$/.test(base) ? '' : '&');
  return base + sep + query + fragment;
}

function bodyText(body) {
  if (body === undefined || body === null) return null;
  if (typeof body === 'object') return stringify(body);
  return toStr(body);
}

function send(method, url, body, above) {
  const headers = bare([]);
  for (let i = 0; i < HTTP.headers.length; i++) headers[i] = bare([HTTP.headers[i][0], HTTP.headers[i][1]]);
  const response = hostCall('http.request', {
    method, url: withParameters(str(url)), headers, body: bodyText(body),
  }, above);
  HTTP.status = response.status;
  HTTP.responseHeaders = response.headers;
  return response.body;
}

const httprequest = {
  addHeader(name, value) {
    const index = headerIndex(HTTP.headers, name);
    const entry = [str(name), str(value)];
    if (index < 0) HTTP.headers.push(entry); else HTTP.headers[index] = entry;
  },
  getHeader(name) {
    const index = headerIndex(HTTP.headers, name);
    return index < 0 ? null : HTTP.headers[index][1];
  },
  clearHeaders() { HTTP.headers = []; },
  addParameter(name, value) { HTTP.params.push([str(name), str(value)]); },
  clearParameters() { HTTP.params = []; },
  get(url) { return send('GET', url, null, httprequest.get); },
  post(url, body) { return send('POST', url, body, httprequest.post); },
  put(url, body) { return send('PUT', url, body, httprequest.put); },
  patch(url, body) { return send('PATCH', url, body, httprequest.patch); },
  delete(url) { return send('DELETE', url, null, httprequest.delete); },
  getStatusCode() { return HTTP.status; },
  getResponseHeader(name) {
    const wanted = str(name).toLowerCase();
    const values = HTTP.responseHeaders.filter(([k]) => k.toLowerCase() === wanted).map(([, v]) => v);
    return values.length ? values.join(', ') : null;
  },
};
install('httprequest', httprequest);

// --- logging ----------------------------------------------------------------------------
// Always a string primitive: what the script's own toJSON, toString or Symbol.toPrimitive
// make of its value is its log line, and nothing more.
function logText(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return '' + toStr(value);
  if (value !== null && typeof value === 'object') {
    try {
      const text = stringify(value);
      if (typeof text === 'string') return text;
    } catch (e) { /* cyclic: fall through */ }
  }
  return '' + toStr(value);
}

// The JSON text of a string primitive (no hook runs, and lone surrogates cross escaped); the
// worker parses it and frames the line itself.
function log(value) {
  H.log(stringify(logText(value)));
}

function logAll(values) {
  let line = '';
  for (let i = 0; i < values.length; i++) line += (i ? ' ' : '') + logText(values[i]);
  log(line);
}

install('console', {
  log(...values) { logAll(values); },
  info(...values) { logAll(values); },
  warn(...values) { logAll(values); },
  error(...values) { logAll(values); },
  debug(...values) { logAll(values); },
});

// --- DOMO -------------------------------------------------------------------------------
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

function dateRange(value) {
  let range = value;
  if (typeof range === 'string' && !DATE_ONLY.test(range) && metadataParameters()[range] !== undefined) {
    range = metadataParameters()[range];  // a parameter's name instead of its value
  }
  if (typeof range === 'string') return { start: range, end: range };
  if (range && typeof range === 'object') return { start: str(range.start), end: str(range.end || range.start) };
  return { start: '', end: '' };
}

function metadataParameters() {
  const meta = globalThis.metadata;
  return meta && meta.parameters && typeof meta.parameters === 'object' ? meta.parameters : {};
}

const DOMO = {
  log(value) { log(value); },
  sleep(ms) { H.sleep(toStr(Number(ms) || 0)); },
  b64EncodeUnicode(text) { return util('b64enc', str(text), DOMO.b64EncodeUnicode); },
  b64DecodeUnicode(text) { return util('b64dec', str(text), DOMO.b64DecodeUnicode); },
  md5(text) { return util('md5', str(text), DOMO.md5); },
  hmacSHA1(text, key) { return util('hmac', ['sha1', str(text), str(key)], DOMO.hmacSHA1); },
  hmacSHA256(text, key) { return util('hmac', ['sha256', str(text), str(key)], DOMO.hmacSHA256); },
  getStartDate(value) { return dateRange(value).start; },
  getEndDate(value) { return dateRange(value).end; },
  parseXML(text) { return util('xml', str(text), DOMO.parseXML); },
  getState(key) { return hostCall('state.get', { key: str(key) }, DOMO.getState); },
  setState(key, value) {
    hostCall('state.set', { key: str(key), value: value === undefined ? null : value }, DOMO.setState);
  },
  jwtBuilder: {
    algorithm: 'HS256', authKey: null, issuer: null, subject: null, claims: {}, expiration: 3600,
  },
  getJWT() {
    const b = DOMO.jwtBuilder || {};
    return util('jwt', {
      algorithm: str(b.algorithm || 'HS256'), authKey: str(b.authKey), issuer: b.issuer ?? null,
      subject: b.subject ?? null, claims: b.claims || {}, expiration: Number(b.expiration) || 0,
    }, DOMO.getJWT);
  },
};
install('DOMO', DOMO);

// --- discovery --------------------------------------------------------------------------
const DISCOVERY = { options: [], published: false, tree: { name: 'root', children: [] } };

function treeParent(parent) {
  return parent && typeof parent === 'object' && Array.isArray(parent.children) ? parent : DISCOVERY.tree;
}

install('discovery', {
  addOption(value, label) {
    DISCOVERY.options.push({ value: str(value), label: label === undefined ? str(value) : str(label) });
  },
  tree: DISCOVERY.tree,
  addNode(parent, name) {
    const node = { name: str(name), children: [] };
    treeParent(parent).children.push(node);
    return node;
  },
  addLeaf(parent, name) {
    const leaf = { name: str(name), leaf: true };
    treeParent(parent).children.push(leaf);
    return leaf;
  },
  publishTree() { DISCOVERY.published = true; },
});

// --- pure built-ins browsers have, loaded on first use ----------------------------------
function lazy(source, names) {
  for (const name of names) {
    defineProperty(globalThis, name, {
      configurable: true,
      enumerable: false,
      get() {
        for (const n of names) delete globalThis[n];
        (0, eval)(H.source(source));
        return globalThis[name];
      },
      set(value) { install(name, value); },
    });
  }
}
lazy('url', ['URL', 'URLSearchParams']);
lazy('encoding', ['TextEncoder', 'TextDecoder']);
lazy('clone', ['structuredClone']);

// --- the run itself ---------------------------------------------------------------------
function isParseError(error) {
  // A parse error of the script happens in the eval call itself, before its first statement:
  // its stack is the position, then `eval`, then runScript. A SyntaxError thrown while the
  // script runs (JSON.parse, a nested eval) has other frames between.
  if (!(error instanceof SyntaxError)) return false;
  const frames = String(error.stack || '').split('\n');
  return /^\s*at <input>:\d+:\d+\s*$/.test(frames[0])
    && /^\s*at eval \(native\)/.test(frames[1] || '')
    && /^\s*at runScript /.test(frames[2] || '');
}

function classify(error) {
  const line = lineOf(error);
  if (error instanceof Error) {
    const text = error.name + ': ' + error.message;
    if (isParseError(error)) return { code: 'syntax_error', message: text, line };
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      return { code: 'stack_overflow', message: 'stack overflow: ' + error.message, line };
    }
    if (error.name === 'InternalError' && /out of memory/i.test(error.message)) {
      return { code: 'memory_limit', message: 'the script ran out of memory', line };
    }
    if (error[HOST_CODE]) return { code: error[HOST_CODE], message: error.message, line };
    return { code: 'script_exception', message: text, line };
  }
  if (error === null) {
    // QuickJS throws a bare null when it cannot even allocate the out-of-memory error.
    return { code: 'memory_limit', message: 'the script ran out of memory', line: null };
  }
  return { code: 'script_exception', message: 'uncaught ' + logText(error), line: null };
}

// The run's error as the gateway gets it: a bare copy with a string message.
function errorFrame(error) {
  if (!error) return null;
  const code = error.code;
  return bare({
    code: typeof code === 'number' ? code : '' + code,
    message: '' + error.message,
    line: typeof error.line === 'number' ? error.line : null,
  });
}

// The discovery tree the script built (it holds `discovery.tree` and may have changed it):
// only names and children, read from own data properties, never through getters.
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const isArray = Array.isArray;
const TREE_DEPTH = 64;

function ownData(object, key) {
  const descriptor = getOwnPropertyDescriptor(object, key);
  return descriptor && 'value' in descriptor ? descriptor.value : undefined;
}

function treeFrame(node, depth) {
  if (node === null || typeof node !== 'object') return null;
  if (depth > TREE_DEPTH) throw new RangeError('the discovery tree is nested too deeply');
  const name = str(ownData(node, 'name'));
  if (ownData(node, 'leaf') === true) return bare({ name, leaf: true });
  const children = ownData(node, 'children');
  const out = bare([]);
  if (isArray(children)) {
    const length = ownData(children, 'length');
    for (let i = 0; i < length; i++) {
      const child = treeFrame(ownData(children, i), depth + 1);
      if (child !== null) out[out.length] = child;
    }
  }
  return bare({ name, children: out });
}

function discoveryFrame() {
  const options = bare([]);
  for (let i = 0; i < DISCOVERY.options.length; i++) {
    const option = DISCOVERY.options[i];
    options[i] = bare({ value: option.value, label: option.label });
  }
  const published = DISCOVERY.published || DISCOVERY.tree.children.length;
  return bare({ options, tree: published ? treeFrame(DISCOVERY.tree, 0) : null });
}

function record(error) {
  if (!RUN.ended && !RUN.error) RUN.error = classify(error);
}

// A `#!` line is allowed only at the very start of a text, where the blank lines now are: it
// is a comment, so it becomes one of the same length.
function hashbangAsComment(script) {
  return script.slice(0, 2) === '#!' ? '//' + script.slice(2) : script;
}

globalThis.__gw_run = function runScript(script, runJson) {
  const run = parse(runJson);
  RUN.lineOffset = run.lineOffset;
  RUN.mode = run.mode;
  RUN.chunkRows = run.chunkRows;
  RUN.resultRows = run.resultRows;
  install('metadata', run.metadata);
  try {
    (0, eval)('\n'.repeat(RUN.lineOffset) + hashbangAsComment(script));
  } catch (error) {
    record(error);
  }
};

globalThis.__gw_finish = function () {
  if (RUN.ended) return null;
  let grid = { columns: bare([]), rows: bare([]) };
  RUN.finishing = true;
  if (!RUN.error) {
    try { grid = gridFinish(); } catch (error) { if (RUN.ended) return null; record(error); }
  }
  let error = RUN.error;
  const isAuth = RUN.mode === 'auth';
  if (!error && isAuth && !RUN.auth) {
    error = {
      code: 'auth_not_reported',
      message: 'the auth script called neither auth.authenticationSuccess() nor auth.authenticationFailed()',
      line: null,
    };
  }
  let status = 'success';
  if (error) status = 'error';
  else if (isAuth && !RUN.auth.success) status = 'failed';
  let discovery = null;
  if (RUN.mode === 'discovery') {
    try {
      discovery = discoveryFrame();
    } catch (e) {
      if (!error) error = classify(e);
      status = 'error';
    }
  }
  const auth = isAuth && RUN.auth ? bare({ success: RUN.auth.success, message: RUN.auth.message }) : null;
  return stringify(bare({
    status,
    auth,
    error: errorFrame(error),
    columns: error ? bare([]) : grid.columns,
    rows: error ? bare([]) : grid.rows,
    discovery,
  }));
};
