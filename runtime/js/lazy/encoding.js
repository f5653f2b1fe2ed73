// TextEncoder and TextDecoder, after the WHATWG Encoding Standard
// (https://encoding.spec.whatwg.org/).
//
// A self-contained classic script (ES2020) that the runtime evaluates lazily, the
// first time a connector script touches `TextEncoder` or `TextDecoder`. It defines
// exactly those two globals and nothing else. No I/O.
//
// TextDecoder knows UTF-8, UTF-16LE, UTF-16BE and windows-1252 (which is what the
// labels "latin1", "iso-8859-1", "ascii" and "us-ascii" mean on the web).
(function () {
'use strict';

// The Encoding Standard's labels for the encodings provided here.
var LABELS = new Map();
[
  ['utf-8', 'unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8'],
  ['utf-16le', 'csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le'],
  ['utf-16be', 'unicodefffe utf-16be'],
  ['windows-1252', 'ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 iso8859-1 ' +
    'iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252'],
].forEach(function (entry) {
  entry[1].split(' ').forEach(function (label) { LABELS.set(label, entry[0]); });
});

// windows-1252 bytes 0x80 to 0x9F; the other bytes are their own code points.
var WINDOWS_1252 = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

function isObject(v) {
  return (typeof v === 'object' && v !== null) || typeof v === 'function';
}

// A WebIDL dictionary argument: undefined and null mean "all defaults".
function dictionary(value, what) {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw new TypeError(`${what} must be an object`);
  return value;
}

var TypedArrayTag = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag).get;
var bufferLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength').get;
var sharedBufferLength = typeof SharedArrayBuffer === 'function' ?
  Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, 'byteLength').get : null;

// The bytes of an AllowSharedBufferSource (any ArrayBuffer, view or DataView).
function bytesOf(input) {
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  // The byteLength getters only accept real (shared) array buffers.
  try { bufferLength.call(input); return new Uint8Array(input); } catch (e) { /* not an ArrayBuffer */ }
  try { if (sharedBufferLength) { sharedBufferLength.call(input); return new Uint8Array(input); } } catch (e) { /* no */ }
  throw new TypeError("TextDecoder.decode: input is not an ArrayBuffer, a typed array or a DataView");
}

// Per-byte loops are slow in QuickJS, so the common cases go through native
// functions instead. They are captured now, and only if still native: a script
// may have declared its own `btoa` (a top-level function replaces the global).
// escape/unescape are Annex B and btoa/Uint8Array.fromBase64 newer than ES2020,
// so each fast path is only taken when what it needs is there.
function native(f) {
  return typeof f === 'function' && /\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(f)) ? f : null;
}
var nativeEscape = native(globalThis.escape), nativeUnescape = native(globalThis.unescape);
var nativeBtoa = native(globalThis.btoa), fromBase64 = native(Uint8Array.fromBase64);
var nativeEncodeURIComponent = native(globalThis.encodeURIComponent);
var nativeDecodeURIComponent = native(globalThis.decodeURIComponent);
var fastEncode = Boolean(fromBase64 && nativeBtoa && nativeUnescape && nativeEncodeURIComponent);
var fastDecode = Boolean(nativeEscape && nativeDecodeURIComponent);
var fromCharCode = String.fromCharCode;

// Code units (an array or typed array) to a string, in slices small enough for apply.
function unitsToString(units) {
  if (units.length <= 8192) return fromCharCode.apply(null, units);
  var s = '';
  for (var i = 0; i < units.length; i += 8192) s += fromCharCode.apply(null, units.slice(i, i + 8192));
  return s;
}

// --- TextEncoder ----------------------------------------------------------------

// Writes the UTF-8 of s into dest, as many whole characters as fit. A lone
// surrogate is written as U+FFFD. Returns [code units read, bytes written].
function utf8Write(s, dest) {
  var read = 0, written = 0, room = dest.length;
  while (read < s.length) {
    var c = s.charCodeAt(read), units = 1;
    if (c >= 0xd800 && c <= 0xdfff) {
      var next = s.charCodeAt(read + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        units = 2;
      } else {
        c = 0xfffd;
      }
    }
    if (c < 0x80) {
      if (written >= room) break;
      dest[written++] = c;
    } else if (c < 0x800) {
      if (written + 2 > room) break;
      dest[written++] = 0xc0 | (c >> 6);
      dest[written++] = 0x80 | (c & 0x3f);
    } else if (c < 0x10000) {
      if (written + 3 > room) break;
      dest[written++] = 0xe0 | (c >> 12);
      dest[written++] = 0x80 | ((c >> 6) & 0x3f);
      dest[written++] = 0x80 | (c & 0x3f);
    } else {
      if (written + 4 > room) break;
      dest[written++] = 0xf0 | (c >> 18);
      dest[written++] = 0x80 | ((c >> 12) & 0x3f);
      dest[written++] = 0x80 | ((c >> 6) & 0x3f);
      dest[written++] = 0x80 | (c & 0x3f);
    }
    read += units;
  }
  return [read, written];
}

// The length in bytes of the UTF-8 of s.
function utf8Length(s) {
  var n = 0;
  for (var i = 0; i < s.length; i++) {
    var c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

var encoders = new WeakSet();

class TextEncoder {
  constructor() {
    encoders.add(this);
  }

  get encoding() {
    checkEncoder(this);
    return 'utf-8';
  }

  encode(input = '') {
    checkEncoder(this);
    var s = `${input}`; // ToString: throws on a Symbol, as WebIDL does
    if (fastEncode) {
      // UTF-8 through encodeURIComponent, as a byte string, then into bytes.
      s = s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
      return fromBase64(nativeBtoa(nativeUnescape(nativeEncodeURIComponent(s))));
    }
    var bytes = new Uint8Array(utf8Length(s));
    utf8Write(s, bytes);
    return bytes;
  }

  encodeInto(source, destination) {
    checkEncoder(this);
    if (arguments.length < 2) throw new TypeError('TextEncoder.encodeInto: 2 arguments required');
    var s = `${source}`;
    if (!ArrayBuffer.isView(destination) || TypedArrayTag.call(destination) !== 'Uint8Array') {
      throw new TypeError('TextEncoder.encodeInto: destination is not a Uint8Array');
    }
    var result = utf8Write(s, destination);
    return { read: result[0], written: result[1] };
  }
}

function checkEncoder(self) {
  if (!encoders.has(self)) throw new TypeError('Illegal invocation');
}

// --- TextDecoder ----------------------------------------------------------------

// Decoders work byte by byte and keep their state between stream chunks. Each
// takes (state, bytes, flush, emit) and calls emit(unit) for every UTF-16 code
// unit, or emit(-1) for a decoding error.

function decodeUTF8(st, bytes, flush, emit) {
  // cp: the code point so far; need: continuation bytes still expected;
  // [lo, hi]: the range allowed for the next one (excludes overlongs, surrogates
  // and code points above U+10FFFF).
  var cp = st.cp, need = st.need, lo = st.lo, hi = st.hi;
  for (var i = 0; i < bytes.length; i++) {
    var b = bytes[i];
    if (need === 0) {
      if (b < 0x80) emit(b);
      else if (b >= 0xc2 && b <= 0xdf) { need = 1; cp = b & 0x1f; }
      else if (b >= 0xe0 && b <= 0xef) { need = 2; cp = b & 0xf; lo = b === 0xe0 ? 0xa0 : 0x80; hi = b === 0xed ? 0x9f : 0xbf; }
      else if (b >= 0xf0 && b <= 0xf4) { need = 3; cp = b & 7; lo = b === 0xf0 ? 0x90 : 0x80; hi = b === 0xf4 ? 0x8f : 0xbf; }
      else emit(-1);
    } else if (b < lo || b > hi) {
      // The sequence is cut short; the byte starts afresh.
      need = 0;
      lo = 0x80;
      hi = 0xbf;
      emit(-1);
      i--;
    } else {
      lo = 0x80;
      hi = 0xbf;
      cp = (cp << 6) | (b & 0x3f);
      if (--need === 0) {
        if (cp < 0x10000) emit(cp);
        else { emit(0xd800 + ((cp - 0x10000) >> 10)); emit(0xdc00 + (cp & 0x3ff)); }
      }
    }
  }
  if (flush && need) { need = 0; lo = 0x80; hi = 0xbf; emit(-1); }
  st.cp = cp;
  st.need = need;
  st.lo = lo;
  st.hi = hi;
}

function decodeUTF16(st, bytes, flush, emit, bigEndian) {
  var lead = st.leadByte, surrogate = st.leadSurrogate;
  for (var i = 0; i < bytes.length; i++) {
    if (lead === null) { lead = bytes[i]; continue; }
    var unit = bigEndian ? (lead << 8) | bytes[i] : lead | (bytes[i] << 8);
    lead = null;
    if (surrogate !== null) {
      var high = surrogate;
      surrogate = null;
      if (unit >= 0xdc00 && unit <= 0xdfff) { emit(high); emit(unit); continue; }
      emit(-1); // an unpaired high surrogate; this unit is read afresh below
    }
    if (unit >= 0xd800 && unit <= 0xdbff) surrogate = unit;
    else if (unit >= 0xdc00 && unit <= 0xdfff) emit(-1);
    else emit(unit);
  }
  if (flush && (lead !== null || surrogate !== null)) { lead = surrogate = null; emit(-1); }
  st.leadByte = lead;
  st.leadSurrogate = surrogate;
}

var DECODERS = {
  'utf-8': decodeUTF8,
  'utf-16le': function (st, bytes, flush, emit) { decodeUTF16(st, bytes, flush, emit, false); },
  'utf-16be': function (st, bytes, flush, emit) { decodeUTF16(st, bytes, flush, emit, true); },
};

// The common case of UTF-8: no sequence pending from an earlier chunk, and valid
// data, which decodeURIComponent decodes natively (it rejects exactly what the
// Encoding Standard calls errors). Returns [text, bytes used], leaving to the
// slow path the bytes of a sequence that a stream chunk cut short, or null when
// the data is not valid and the slow path must decide.
function decodeUTF8Fast(st, bytes, flush) {
  if (st.need || !fastDecode) return null;
  var end = bytes.length;
  if (!flush) {
    // Keep back an incomplete sequence at the end of a stream chunk.
    for (var k = end - 1; k >= 0 && k >= end - 3; k--) {
      if (bytes[k] < 0x80) break;
      if (bytes[k] >= 0xc0) {
        if (end - k < (bytes[k] >= 0xf0 ? 4 : bytes[k] >= 0xe0 ? 3 : 2)) end = k;
        break;
      }
    }
  }
  try {
    return [nativeDecodeURIComponent(nativeEscape(unitsToString(bytes.subarray(0, end)))), end];
  } catch (e) {
    return null; // not valid UTF-8
  }
}

function freshState() {
  return { cp: 0, need: 0, lo: 0x80, hi: 0xbf, leadByte: null, leadSurrogate: null };
}

var decoders = new WeakMap();

function decoderOf(self) {
  var d = decoders.get(self);
  if (!d) throw new TypeError('Illegal invocation');
  return d;
}

class TextDecoder {
  constructor(label = 'utf-8', options = undefined) {
    var key = `${label}`.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, '').replace(/[A-Z]+/g, function (s) { return s.toLowerCase(); });
    var encoding = LABELS.get(key);
    if (!encoding) throw new RangeError(`TextDecoder: the encoding label provided ('${label}') is invalid`);
    options = dictionary(options, 'TextDecoder options');
    decoders.set(this, {
      encoding: encoding,
      fatal: Boolean(options.fatal),
      ignoreBOM: Boolean(options.ignoreBOM),
      state: freshState(),
      bomSeen: false,
      doNotFlush: false,
    });
  }

  get encoding() { return decoderOf(this).encoding; }
  get fatal() { return decoderOf(this).fatal; }
  get ignoreBOM() { return decoderOf(this).ignoreBOM; }

  decode(input = undefined, options = undefined) {
    var d = decoderOf(this);
    var bytes = input === undefined ? new Uint8Array(0) : bytesOf(input);
    var stream = Boolean(dictionary(options, 'TextDecoder.decode options').stream);
    if (!d.doNotFlush) {
      d.state = freshState();
      d.bomSeen = false;
    }
    d.doNotFlush = stream;
    var out = null, fast;
    if (d.encoding === 'utf-8' && (fast = decodeUTF8Fast(d.state, bytes, !stream))) {
      out = fast[0] + (fast[1] < bytes.length ? decodeSlowly(d, bytes.subarray(fast[1]), stream) : '');
    } else if (d.encoding === 'windows-1252') {
      out = unitsToString(bytes).replace(/[\x80-\x9f]/g, function (c) {
        return fromCharCode(WINDOWS_1252[c.charCodeAt(0) - 0x80]);
      });
    }
    if (out === null) out = decodeSlowly(d, bytes, stream);
    // A byte order mark at the very start of the stream is dropped (UTF-8 and
    // UTF-16 only), unless ignoreBOM asks to keep it.
    if (out.length && !d.bomSeen && d.encoding !== 'windows-1252') {
      d.bomSeen = true;
      if (!d.ignoreBOM && out.charCodeAt(0) === 0xfeff) out = out.slice(1);
    }
    return out;
  }
}

// Decodes byte by byte; for other encodings, and for UTF-8 with errors in it.
function decodeSlowly(d, bytes, stream) {
  var units = [];
  var emit = function (unit) {
    if (unit >= 0) {
      units.push(unit);
    } else if (d.fatal) {
      d.doNotFlush = false; // the next call starts afresh
      throw new TypeError(`TextDecoder.decode: the encoded data is not valid ${d.encoding}`);
    } else {
      units.push(0xfffd);
    }
  };
  DECODERS[d.encoding](d.state, bytes, !stream, emit);
  return unitsToString(units);
}

[TextEncoder, TextDecoder].forEach(function (cls) {
  // WebIDL members are enumerable; class syntax makes them not.
  Object.getOwnPropertyNames(cls.prototype).forEach(function (key) {
    if (key !== 'constructor') Object.defineProperty(cls.prototype, key, { enumerable: true });
  });
  Object.defineProperty(cls.prototype, Symbol.toStringTag, { value: cls.name, configurable: true });
  Object.defineProperty(globalThis, cls.name, { value: cls, writable: true, configurable: true, enumerable: false });
});
})();
