// URL and URLSearchParams, after the WHATWG URL Standard (https://url.spec.whatwg.org/).
//
// A self-contained classic script (ES2020) that the runtime evaluates lazily, the
// first time a connector script touches `URL` or `URLSearchParams`. It defines
// exactly those two globals and nothing else. No I/O.
//
// The parser is the standard's state machine, walked over UTF-16 code units: every
// delimiter is ASCII, and percent-encoding (the only step where a surrogate pair
// matters) works on whole strings, so code points never need to be split out.
(function () {
'use strict';

var FAILURE = { failure: true };

// Special schemes and their default ports (file has none).
var SPECIAL = new Map([['ftp', 21], ['file', null], ['http', 80], ['https', 443], ['ws', 80], ['wss', 443]]);

// Percent-encode sets. Each holds the C0 controls, everything above U+007E and
// the listed characters; a surrogate pair is matched first, to be encoded whole.
function encodeSet(chars, withSpace) {
  return new RegExp('[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]|[^' + (withSpace ? '\\x21' : '\\x20') + '-\\x7E]' + (chars ? '|[' + chars + ']' : ''), 'g');
}
var C0_SET = encodeSet('', false);
var FRAGMENT_SET = encodeSet('"<>`', true);
var QUERY_SET = encodeSet('"#<>', true);
var SPECIAL_QUERY_SET = encodeSet('"#<>\'', true);
var PATH_SET = encodeSet('"#<>?^`{}', true);
var USERINFO_SET = encodeSet('"#<>?^`{}/:;=@[\\\\\\]|', true);
// application/x-www-form-urlencoded keeps only these; a space becomes '+'.
var FORM_SET = /[\uD800-\uDBFF][\uDC00-\uDFFF]|[^*\-.0-9A-Z_a-z]/g;

// One code point as its percent-encoded UTF-8 bytes, in upper-case hex.
function encodeChar(ch) {
  var cp = ch.codePointAt(0), bytes;
  if (cp < 0x80) bytes = [cp];
  else if (cp < 0x800) bytes = [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  else if (cp < 0x10000) bytes = [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  else bytes = [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return bytes.map(function (b) { return (b < 16 ? '%0' : '%') + b.toString(16).toUpperCase(); }).join('');
}

function percentEncode(s, set) {
  return s.replace(set, encodeChar);
}

// WebIDL USVString conversion: ToString (a template literal throws on a Symbol,
// as WebIDL does), then lone surrogates become U+FFFD.
function usv(v) {
  var s = `${v}`;
  if (!/[\uD800-\uDFFF]/.test(s)) return s;
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

// UTF-8 decode with replacement, as the Encoding Standard's decoder does it.
function utf8Decode(bytes) {
  var out = '';
  for (var i = 0; i < bytes.length; ) {
    var b = bytes[i++], need = 0, cp = 0, lo = 0x80, hi = 0xbf;
    if (b < 0x80) { out += String.fromCharCode(b); continue; }
    if (b >= 0xc2 && b <= 0xdf) { need = 1; cp = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { need = 2; cp = b & 0xf; if (b === 0xe0) lo = 0xa0; if (b === 0xed) hi = 0x9f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; cp = b & 7; if (b === 0xf0) lo = 0x90; if (b === 0xf4) hi = 0x8f; }
    else { out += '\uFFFD'; continue; }
    // A byte outside [lo, hi] ends the sequence and is then read again on its own.
    for (; need > 0 && bytes[i] >= lo && bytes[i] <= hi; need--, lo = 0x80, hi = 0xbf) {
      cp = (cp << 6) | (bytes[i++] & 0x3f);
    }
    out += need ? '\uFFFD' : String.fromCodePoint(cp);
  }
  return out;
}

// Percent-decode, then UTF-8 decode. Each run of %XX escapes is decoded on its
// own: literal characters are whole UTF-8 sequences and never start with a
// continuation byte, so no sequence can span the edge of a run.
function percentDecode(s) {
  if (s.indexOf('%') < 0) return s;
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, function (run) {
    var bytes = [];
    for (var i = 0; i < run.length; i += 3) bytes.push(parseInt(run.substr(i + 1, 2), 16));
    return utf8Decode(bytes);
  });
}

// --- application/x-www-form-urlencoded ---------------------------------------

function parseForm(s) {
  var list = [];
  s.split('&').forEach(function (seq) {
    if (seq === '') return;
    var eq = seq.indexOf('='), name = eq < 0 ? seq : seq.slice(0, eq), value = eq < 0 ? '' : seq.slice(eq + 1);
    list.push([percentDecode(name.replace(/\+/g, ' ')), percentDecode(value.replace(/\+/g, ' '))]);
  });
  return list;
}

function formEncode(s) {
  return s.replace(FORM_SET, function (ch) { return ch === ' ' ? '+' : encodeChar(ch); });
}

function serializeForm(list) {
  return list.map(function (p) { return formEncode(p[0]) + '=' + formEncode(p[1]); }).join('&');
}

// --- Hosts --------------------------------------------------------------------

// An IPv4 "number": decimal, 0x-prefixed hex or 0-prefixed octal. NaN on failure.
function parseIPv4Number(s) {
  var radix = 10;
  if (s === '') return NaN;
  if (/^0[xX]/.test(s)) { radix = 16; s = s.slice(2); }
  else if (s.length > 1 && s[0] === '0') { radix = 8; s = s.slice(1); }
  if (s === '') return 0;
  var valid = radix === 16 ? /^[0-9A-Fa-f]+$/ : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  return valid.test(s) ? parseInt(s, radix) : NaN;
}

// A domain whose last label is a number must be an IPv4 address.
function endsInNumber(s) {
  var parts = s.split('.');
  if (parts[parts.length - 1] === '') {
    if (parts.length === 1) return false;
    parts.pop();
  }
  var last = parts[parts.length - 1];
  return /^[0-9]+$/.test(last) || !isNaN(parseIPv4Number(last));
}

function parseIPv4(s) {
  var parts = s.split('.');
  if (parts[parts.length - 1] === '' && parts.length > 1) parts.pop();
  if (parts.length > 4) return FAILURE;
  var nums = parts.map(parseIPv4Number);
  for (var i = 0; i < nums.length; i++) {
    if (isNaN(nums[i]) || (nums[i] > 255 && i < nums.length - 1)) return FAILURE;
  }
  // The last number fills all the remaining bytes: 1.65536 is 1.1.0.0.
  var addr = nums.pop(), out = [];
  if (addr >= Math.pow(256, 5 - parts.length)) return FAILURE;
  nums.forEach(function (n, j) { addr += n * Math.pow(256, 3 - j); });
  for (i = 0; i < 4; i++, addr = Math.floor(addr / 256)) out.unshift(addr % 256);
  return out.join('.');
}

function isHex(c) {
  return c !== undefined && /[0-9A-Fa-f]/.test(c);
}

function isDigit(c) {
  return c !== undefined && c >= '0' && c <= '9';
}

// Returns eight 16-bit pieces, or FAILURE.
function parseIPv6(input) {
  var address = [0, 0, 0, 0, 0, 0, 0, 0], piece = 0, compress = null, p = 0;
  if (input[p] === ':') {
    if (input[p + 1] !== ':') return FAILURE;
    p += 2;
    compress = ++piece;
  }
  while (input[p] !== undefined) {
    if (piece === 8) return FAILURE;
    if (input[p] === ':') {
      if (compress !== null) return FAILURE;
      p++;
      compress = ++piece;
      continue;
    }
    var value = 0, length = 0;
    for (; length < 4 && isHex(input[p]); length++) value = value * 16 + parseInt(input[p++], 16);
    if (input[p] === '.') {
      // An embedded IPv4 address fills the last two pieces.
      if (length === 0 || piece > 6) return FAILURE;
      p -= length;
      for (var seen = 0; input[p] !== undefined; seen++) {
        var v4 = null;
        if (seen > 0) {
          if (input[p] !== '.' || seen >= 4) return FAILURE;
          p++;
        }
        if (!isDigit(input[p])) return FAILURE;
        while (isDigit(input[p])) {
          if (v4 === 0) return FAILURE; // no leading zeros
          v4 = (v4 || 0) * 10 + +input[p++];
          if (v4 > 255) return FAILURE;
        }
        address[piece] = address[piece] * 0x100 + v4;
        if (seen === 1 || seen === 3) piece++;
      }
      if (seen !== 4) return FAILURE;
      break;
    }
    if (input[p] === ':') {
      if (input[++p] === undefined) return FAILURE;
    } else if (input[p] !== undefined) {
      return FAILURE;
    }
    address[piece++] = value;
  }
  if (compress !== null) {
    // Move the pieces after "::" to the end.
    for (var swaps = piece - compress, i = 7; i !== 0 && swaps > 0; i--, swaps--) {
      var t = address[compress + swaps - 1];
      address[compress + swaps - 1] = address[i];
      address[i] = t;
    }
  } else if (piece !== 8) {
    return FAILURE;
  }
  return address;
}

// Compresses the first longest run (two or more) of zero pieces into "::".
function serializeIPv6(address) {
  var best = -1, bestLength = 1, out = '';
  for (var i = 0, j; i < 8; i = j + 1) {
    for (j = i; j < 8 && address[j] === 0; ) j++;
    if (j - i > bestLength) { best = i; bestLength = j - i; }
  }
  for (i = 0; i < 8; i++) {
    if (i === best) {
      out += i === 0 ? '::' : ':';
      i += bestLength - 1;
    } else {
      out += address[i].toString(16) + (i < 7 ? ':' : '');
    }
  }
  return out;
}

// Punycode (RFC 3492), for internationalised domain labels.
function adapt(delta, numPoints, first) {
  delta = first ? Math.floor(delta / 700) : delta >> 1;
  delta += Math.floor(delta / numPoints);
  for (var k = 0; delta > 455; k += 36) delta = Math.floor(delta / 35);
  return k + Math.floor((36 * delta) / (delta + 38));
}

function threshold(k, bias) {
  return k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
}

function punycodeEncode(label) {
  var cps = Array.from(label, function (c) { return c.codePointAt(0); });
  var out = label.replace(/[^\0-\x7F]/gu, ''), basic = out.length, handled = basic;
  var n = 128, delta = 0, bias = 72;
  var digit = function (d) { return String.fromCharCode(d < 26 ? d + 97 : d + 22); }; // a-z, 0-9
  if (basic > 0) out += '-';
  while (handled < cps.length) {
    var m = Math.min.apply(null, cps.filter(function (c) { return c >= n; }));
    delta += (m - n) * (handled + 1);
    n = m;
    cps.forEach(function (c) {
      if (c < n) delta++;
      if (c !== n) return;
      var q = delta;
      for (var k = 36, t; q >= (t = threshold(k, bias)); k += 36) {
        out += digit(t + ((q - t) % (36 - t)));
        q = Math.floor((q - t) / (36 - t));
      }
      out += digit(q);
      bias = adapt(delta, handled + 1, handled === basic);
      delta = 0;
      handled++;
    });
    delta++;
    n++;
  }
  return out;
}

function punycodeDecode(input) {
  var d = input.lastIndexOf('-'), p = d > 0 ? d + 1 : 0, n = 128, i = 0, bias = 72;
  var out = Array.from(input.slice(0, Math.max(d, 0)), function (c) { return c.codePointAt(0); });
  while (p < input.length) {
    var old = i, w = 1;
    for (var k = 36; ; k += 36) {
      var c = input.charCodeAt(p++); // NaN past the end
      var dg = c >= 48 && c <= 57 ? c - 22 : c >= 65 && c <= 90 ? c - 65 : c >= 97 && c <= 122 ? c - 97 : -1;
      if (dg < 0) return FAILURE;
      i += dg * w;
      var t = threshold(k, bias);
      if (dg < t) break;
      w *= 36 - t;
      if (i > 0x7fffffff || w > 0x7fffffff) return FAILURE;
    }
    bias = adapt(i - old, out.length + 1, old === 0);
    n += Math.floor(i / (out.length + 1));
    i %= out.length + 1;
    if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return FAILURE;
    out.splice(i++, 0, n);
  }
  return String.fromCodePoint.apply(null, out);
}

// An approximation of the UTS #46 mapping: compatibility normalisation and
// lower-casing cover what real host names contain (capitals, full-width forms);
// the full mapping table is not carried.
function mapLabel(s) {
  return s.normalize('NFKC').replace(/\u03A3/g, '\u03C3').toLowerCase().normalize('NFC');
}

// Code points that UTS #46 maps to nothing, and non-ASCII ones never valid.
var IGNORED = /[\u00AD\u034F\u180B-\u180D\u200B\u2060\uFE00-\uFE0F\uFEFF]/g;
var DISALLOWED = /[\p{Cc}\p{Cn}\p{Co}\p{Cs}\p{Z}\uFFFD]|(?![\u200C\u200D])\p{Cf}/u;
var NON_ASCII = /[^\0-\x7F]/;

function domainToASCII(domain) {
  if (!NON_ASCII.test(domain) && !/(^|\.)xn--/i.test(domain)) {
    domain = domain.toLowerCase(); // the common case: ASCII only
    return domain === '' ? FAILURE : domain;
  }
  var labels = mapLabel(domain.replace(IGNORED, '')).replace(/[\u3002\uFF0E\uFF61]/g, '.').split('.');
  for (var i = 0; i < labels.length; i++) {
    var label = labels[i];
    if (label.slice(0, 4) === 'xn--') {
      // An encoded label must decode to a valid, already mapped, non-ASCII label.
      var decoded = NON_ASCII.test(label) ? FAILURE : punycodeDecode(label.slice(4));
      if (decoded === FAILURE || !NON_ASCII.test(decoded) || mapLabel(decoded) !== decoded || DISALLOWED.test(decoded)) {
        return FAILURE;
      }
    } else if (NON_ASCII.test(label)) {
      if (DISALLOWED.test(label)) return FAILURE;
      labels[i] = 'xn--' + punycodeEncode(label);
    }
  }
  return labels.join('.') || FAILURE;
}

// Hosts are kept serialised: a domain, "a.b.c.d", "[v6]", an opaque host or "".
function parseHost(input, isOpaque) {
  if (input[0] === '[') {
    var address = input[input.length - 1] === ']' ? parseIPv6(input.slice(1, -1)) : FAILURE;
    return address === FAILURE ? FAILURE : '[' + serializeIPv6(address) + ']';
  }
  if (isOpaque) return /[\0\t\n\r #/:<>?@[\\\]^|]/.test(input) ? FAILURE : percentEncode(input, C0_SET);
  var ascii = domainToASCII(percentDecode(input));
  if (ascii === FAILURE || /[\0-\x20#%/:<>?@[\\\]^|\x7F]/.test(ascii)) return FAILURE;
  return endsInNumber(ascii) ? parseIPv4(ascii) : ascii;
}

// --- The basic URL parser -----------------------------------------------------

var SCHEME_START = 1, SCHEME = 2, NO_SCHEME = 3, SPECIAL_RELATIVE_OR_AUTHORITY = 4, PATH_OR_AUTHORITY = 5,
  RELATIVE = 6, RELATIVE_SLASH = 7, SPECIAL_AUTHORITY_SLASHES = 8, SPECIAL_AUTHORITY_IGNORE_SLASHES = 9,
  AUTHORITY = 10, HOST = 11, HOSTNAME = 12, PORT = 13, FILE = 14, FILE_SLASH = 15, FILE_HOST = 16,
  PATH_START = 17, PATH = 18, OPAQUE_PATH = 19, QUERY = 20, FRAGMENT = 21;

// A URL record. path is a list of segments, or a string for an opaque path.
function newRecord() {
  return { scheme: '', username: '', password: '', host: null, port: null, path: [], query: null, fragment: null };
}

function hasOpaquePath(url) {
  return typeof url.path === 'string';
}

function includesCredentials(url) {
  return url.username !== '' || url.password !== '';
}

function cannotHaveCredentialsOrPort(url) {
  return url.host === null || url.host === '' || url.scheme === 'file';
}

function copyAuthority(url, base) {
  url.username = base.username;
  url.password = base.password;
  url.host = base.host;
  url.port = base.port;
}

// "C:" or "C|"; a normalised one is "C:".
function isDriveLetter(s, normalized) {
  return s.length === 2 && /[A-Za-z]/.test(s[0]) && (s[1] === ':' || (!normalized && s[1] === '|'));
}

function startsWithDriveLetter(s) {
  return isDriveLetter(s.slice(0, 2)) && (s.length === 2 || '/\\?#'.indexOf(s[2]) >= 0);
}

function shortenPath(url) {
  if (url.scheme !== 'file' || url.path.length !== 1 || !isDriveLetter(url.path[0], true)) url.path.pop();
}

// '?' starts the query and '#' the fragment, from several states.
function queryOrFragment(url, c, state) {
  if (c === '?') { url.query = ''; return QUERY; }
  if (c === '#') { url.fragment = ''; return FRAGMENT; }
  return state;
}

// Parses input (a USV string) into a new record, or, with stateOverride, into the
// given record as the setters do. Returns the record, or FAILURE.
function parse(input, base, url, stateOverride) {
  if (!url) {
    url = newRecord();
    input = input.replace(/^[\0-\x20]+|[\0-\x20]+$/g, '');
  }
  input = input.replace(/[\t\n\r]/g, '');
  var state = stateOverride || SCHEME_START, buffer = '', special = SPECIAL.has(url.scheme);
  var atSignSeen = false, insideBrackets = false, passwordTokenSeen = false, host;

  for (var pointer = 0; ; pointer++) {
    var c = input[pointer]; // undefined is EOF
    var slash = c === '/' || (special && c === '\\');
    var endOfAuthority = c === undefined || slash || c === '?' || c === '#';
    switch (state) {
      case SCHEME_START:
        if (c !== undefined && /[A-Za-z]/.test(c)) { buffer = c.toLowerCase(); state = SCHEME; }
        else if (stateOverride) return FAILURE;
        else { state = NO_SCHEME; pointer--; }
        break;

      case SCHEME:
        if (c !== undefined && /[A-Za-z0-9+\-.]/.test(c)) {
          buffer += c.toLowerCase();
        } else if (c === ':') {
          if (stateOverride) {
            // The protocol setter cannot change a URL's specialness, nor make
            // a file URL out of one with credentials or a port.
            if (SPECIAL.has(buffer) !== special) return url;
            if ((includesCredentials(url) || url.port !== null) && buffer === 'file') return url;
            if (url.scheme === 'file' && url.host === '') return url;
          }
          url.scheme = buffer;
          special = SPECIAL.has(buffer);
          if (stateOverride) {
            if (url.port === SPECIAL.get(url.scheme)) url.port = null;
            return url;
          }
          buffer = '';
          if (url.scheme === 'file') state = FILE;
          else if (special && base && base.scheme === url.scheme) state = SPECIAL_RELATIVE_OR_AUTHORITY;
          else if (special) state = SPECIAL_AUTHORITY_SLASHES;
          else if (input[pointer + 1] === '/') { state = PATH_OR_AUTHORITY; pointer++; }
          else { url.path = ''; state = OPAQUE_PATH; }
        } else if (stateOverride) {
          return FAILURE;
        } else {
          buffer = '';
          state = NO_SCHEME;
          pointer = -1; // start over
        }
        break;

      case NO_SCHEME:
        if (!base || (hasOpaquePath(base) && c !== '#')) return FAILURE;
        if (hasOpaquePath(base)) {
          url.scheme = base.scheme;
          url.path = base.path;
          url.query = base.query;
          url.fragment = '';
          state = FRAGMENT;
        } else {
          state = base.scheme === 'file' ? FILE : RELATIVE;
          pointer--;
        }
        break;

      case SPECIAL_RELATIVE_OR_AUTHORITY:
        if (c === '/' && input[pointer + 1] === '/') { state = SPECIAL_AUTHORITY_IGNORE_SLASHES; pointer++; }
        else { state = RELATIVE; pointer--; }
        break;

      case PATH_OR_AUTHORITY:
        if (c === '/') state = AUTHORITY;
        else { state = PATH; pointer--; }
        break;

      case RELATIVE:
        url.scheme = base.scheme;
        special = SPECIAL.has(url.scheme);
        if (c === '/' || (special && c === '\\')) {
          state = RELATIVE_SLASH;
        } else {
          copyAuthority(url, base);
          url.path = base.path.slice();
          url.query = base.query;
          state = queryOrFragment(url, c, state);
          if (c !== undefined && state === RELATIVE) {
            url.query = null;
            shortenPath(url);
            state = PATH;
            pointer--;
          }
        }
        break;

      case RELATIVE_SLASH:
        if (special && (c === '/' || c === '\\')) state = SPECIAL_AUTHORITY_IGNORE_SLASHES;
        else if (c === '/') state = AUTHORITY;
        else { copyAuthority(url, base); state = PATH; pointer--; }
        break;

      case SPECIAL_AUTHORITY_SLASHES:
        state = SPECIAL_AUTHORITY_IGNORE_SLASHES;
        if (c === '/' && input[pointer + 1] === '/') pointer++;
        else pointer--;
        break;

      case SPECIAL_AUTHORITY_IGNORE_SLASHES:
        if (c !== '/' && c !== '\\') { state = AUTHORITY; pointer--; }
        break;

      case AUTHORITY:
        if (c === '@') {
          // Everything before the last '@' is userinfo; earlier ones are data.
          if (atSignSeen) buffer = '%40' + buffer;
          atSignSeen = true;
          var colon = passwordTokenSeen ? -1 : buffer.indexOf(':');
          if (colon < 0) {
            url[passwordTokenSeen ? 'password' : 'username'] += percentEncode(buffer, USERINFO_SET);
          } else {
            passwordTokenSeen = true;
            url.username += percentEncode(buffer.slice(0, colon), USERINFO_SET);
            url.password += percentEncode(buffer.slice(colon + 1), USERINFO_SET);
          }
          buffer = '';
        } else if (endOfAuthority) {
          if (atSignSeen && buffer === '') return FAILURE;
          pointer -= buffer.length + 1; // read the buffer again, as the host
          buffer = '';
          state = HOST;
        } else {
          buffer += c;
        }
        break;

      case HOST:
      case HOSTNAME:
        if (stateOverride && url.scheme === 'file') {
          state = FILE_HOST;
          pointer--;
        } else if (c === ':' && !insideBrackets) {
          if (buffer === '' || stateOverride === HOSTNAME) return FAILURE;
          if ((host = parseHost(buffer, !special)) === FAILURE) return FAILURE;
          url.host = host;
          buffer = '';
          state = PORT;
        } else if (endOfAuthority) {
          pointer--;
          if (special && buffer === '') return FAILURE;
          if (stateOverride && buffer === '' && (includesCredentials(url) || url.port !== null)) return FAILURE;
          if ((host = parseHost(buffer, !special)) === FAILURE) return FAILURE;
          url.host = host;
          buffer = '';
          state = PATH_START;
          if (stateOverride) return url;
        } else {
          if (c === '[') insideBrackets = true;
          if (c === ']') insideBrackets = false;
          buffer += c;
        }
        break;

      case PORT:
        if (isDigit(c)) {
          buffer += c;
        } else if (endOfAuthority || stateOverride) {
          if (buffer !== '') {
            var port = parseInt(buffer, 10);
            if (port > 65535) return FAILURE;
            url.port = port === SPECIAL.get(url.scheme) ? null : port;
            buffer = '';
          }
          if (stateOverride) return url;
          state = PATH_START;
          pointer--;
        } else {
          return FAILURE;
        }
        break;

      case FILE:
        url.scheme = 'file';
        url.host = '';
        special = true;
        if (c === '/' || c === '\\') {
          state = FILE_SLASH;
        } else if (base && base.scheme === 'file') {
          url.host = base.host;
          url.path = base.path.slice();
          url.query = base.query;
          state = queryOrFragment(url, c, state);
          if (c !== undefined && state === FILE) {
            url.query = null;
            if (startsWithDriveLetter(input.slice(pointer))) url.path = [];
            else shortenPath(url);
            state = PATH;
            pointer--;
          }
        } else {
          state = PATH;
          pointer--;
        }
        break;

      case FILE_SLASH:
        if (c === '/' || c === '\\') {
          state = FILE_HOST;
        } else {
          if (base && base.scheme === 'file') {
            url.host = base.host;
            if (!startsWithDriveLetter(input.slice(pointer)) && isDriveLetter(base.path[0] || '', true)) {
              url.path.push(base.path[0]);
            }
          }
          state = PATH;
          pointer--;
        }
        break;

      case FILE_HOST:
        if (c === undefined || c === '/' || c === '\\' || c === '?' || c === '#') {
          pointer--;
          if (!stateOverride && isDriveLetter(buffer)) {
            // "file://C:/": the drive letter is no host but the first path
            // segment; the buffer is kept for the path state.
            state = PATH;
          } else if (buffer === '') {
            url.host = '';
            if (stateOverride) return url;
            state = PATH_START;
          } else {
            if ((host = parseHost(buffer, false)) === FAILURE) return FAILURE;
            url.host = host === 'localhost' ? '' : host;
            if (stateOverride) return url;
            buffer = '';
            state = PATH_START;
          }
        } else {
          buffer += c;
        }
        break;

      case PATH_START:
        if (special) {
          state = PATH;
          if (c !== '/' && c !== '\\') pointer--;
        } else if (!stateOverride && (c === '?' || c === '#')) {
          state = queryOrFragment(url, c, state);
        } else if (c !== undefined) {
          state = PATH;
          if (c !== '/') pointer--;
        } else if (stateOverride && url.host === null) {
          url.path.push('');
        }
        break;

      case PATH:
        // A segment is collected raw and percent-encoded once complete.
        if (c === undefined || slash || (!stateOverride && (c === '?' || c === '#'))) {
          var dots = buffer.toLowerCase().replace(/%2e/g, '.');
          if (dots === '..') {
            shortenPath(url);
            if (!slash) url.path.push('');
          } else if (dots === '.') {
            if (!slash) url.path.push('');
          } else {
            if (url.scheme === 'file' && url.path.length === 0 && isDriveLetter(buffer)) buffer = buffer[0] + ':';
            url.path.push(percentEncode(buffer, PATH_SET));
          }
          buffer = '';
          state = queryOrFragment(url, c, state);
        } else {
          buffer += c;
        }
        break;

      case OPAQUE_PATH:
        if (c === '?' || c === '#' || c === undefined) {
          url.path += percentEncode(buffer, C0_SET);
          buffer = '';
          state = queryOrFragment(url, c, state);
        } else if (c === ' ' && (input[pointer + 1] === '?' || input[pointer + 1] === '#')) {
          buffer += '%20'; // an opaque path never ends in a space, so it round-trips
        } else {
          buffer += c;
        }
        break;

      case QUERY:
        if (c === undefined || (!stateOverride && c === '#')) {
          url.query += percentEncode(buffer, special ? SPECIAL_QUERY_SET : QUERY_SET);
          buffer = '';
          state = queryOrFragment(url, c, state);
        } else {
          buffer += c;
        }
        break;

      case FRAGMENT:
        if (c !== undefined) buffer += c;
        else url.fragment += percentEncode(buffer, FRAGMENT_SET);
        break;
    }
    // Done once a step ends on EOF (a step may move the pointer back).
    if (pointer >= input.length) return url;
  }
}

function serializePath(url) {
  return hasOpaquePath(url) ? url.path : url.path.map(function (s) { return '/' + s; }).join('');
}

function serialize(url) {
  var out = url.scheme + ':';
  if (url.host !== null) {
    out += '//';
    if (includesCredentials(url)) out += url.username + (url.password !== '' ? ':' + url.password : '') + '@';
    out += url.host + (url.port !== null ? ':' + url.port : '');
  } else if (!hasOpaquePath(url) && url.path.length > 1 && url.path[0] === '') {
    out += '/.'; // so that a path starting with "//" does not read as a host
  }
  out += serializePath(url);
  if (url.query !== null) out += '?' + url.query;
  if (url.fragment !== null) out += '#' + url.fragment;
  return out;
}

function serializeOrigin(url) {
  if (url.scheme === 'blob') {
    var inner = parse(serializePath(url), null);
    return inner !== FAILURE && (inner.scheme === 'http' || inner.scheme === 'https') ? serializeOrigin(inner) : 'null';
  }
  if (!SPECIAL.has(url.scheme) || url.scheme === 'file') return 'null';
  return url.scheme + '://' + url.host + (url.port !== null ? ':' + url.port : '');
}

// --- The API objects ----------------------------------------------------------
// Internal state lives in WeakMaps, out of scripts' reach.

var records = new WeakMap(); // URL -> its record
var paramsOf = new WeakMap(); // URL -> its URLSearchParams
var lists = new WeakMap(); // URLSearchParams -> { list: [[name, value]...], url: URL or null }

function internal(map, self) {
  var value = map.get(self);
  if (!value) throw new TypeError('Illegal invocation');
  return value;
}

function requireArgs(args, n, name) {
  if (args.length < n) throw new TypeError(`${name}: ${n} argument(s) required, but only ${args.length} present`);
}

// The "API URL parser": parses base first when there is one.
function parseWithBase(url, base) {
  var baseRecord = base === undefined ? null : parse(usv(base), null);
  return baseRecord === FAILURE ? FAILURE : parse(usv(url), baseRecord);
}

function initURL(self, record) {
  var params = new URLSearchParams();
  records.set(self, record);
  paramsOf.set(self, params);
  lists.get(params).url = self;
  resetParams(self);
  return self;
}

// Brings searchParams up to date after the query changed through the URL.
function resetParams(self) {
  var query = records.get(self).query;
  lists.get(paramsOf.get(self)).list = query ? parseForm(query) : [];
}

// Writes the list back into the URL's query (the "update steps").
function update(state) {
  if (!state.url) return;
  var query = serializeForm(state.list);
  records.get(state.url).query = query === '' ? null : query;
}

class URL {
  constructor(url, base = undefined) {
    requireArgs(arguments, 1, 'URL');
    var record = parseWithBase(url, base);
    if (record === FAILURE) throw new TypeError(`Invalid URL: ${url}`);
    initURL(this, record);
  }

  static canParse(url, base = undefined) {
    requireArgs(arguments, 1, 'URL.canParse');
    return parseWithBase(url, base) !== FAILURE;
  }

  // Like the constructor, but answers null instead of throwing.
  static parse(url, base = undefined) {
    requireArgs(arguments, 1, 'URL.parse');
    var record = parseWithBase(url, base);
    return record === FAILURE ? null : initURL(Object.create(URL.prototype), record);
  }

  get href() { return serialize(internal(records, this)); }
  set href(value) {
    internal(records, this);
    var record = parse(usv(value), null);
    if (record === FAILURE) throw new TypeError(`Invalid URL: ${value}`);
    records.set(this, record);
    resetParams(this);
  }

  get origin() { return serializeOrigin(internal(records, this)); }

  get protocol() { return internal(records, this).scheme + ':'; }
  set protocol(value) { parse(usv(value) + ':', null, internal(records, this), SCHEME_START); }

  get username() { return internal(records, this).username; }
  set username(value) {
    var r = internal(records, this);
    if (!cannotHaveCredentialsOrPort(r)) r.username = percentEncode(usv(value), USERINFO_SET);
  }

  get password() { return internal(records, this).password; }
  set password(value) {
    var r = internal(records, this);
    if (!cannotHaveCredentialsOrPort(r)) r.password = percentEncode(usv(value), USERINFO_SET);
  }

  get host() {
    var r = internal(records, this);
    return r.host === null ? '' : r.port === null ? r.host : r.host + ':' + r.port;
  }
  set host(value) {
    var r = internal(records, this);
    if (!hasOpaquePath(r)) parse(usv(value), null, r, HOST);
  }

  get hostname() { return internal(records, this).host || ''; }
  set hostname(value) {
    var r = internal(records, this);
    if (!hasOpaquePath(r)) parse(usv(value), null, r, HOSTNAME);
  }

  get port() {
    var r = internal(records, this);
    return r.port === null ? '' : String(r.port);
  }
  set port(value) {
    var r = internal(records, this);
    if (cannotHaveCredentialsOrPort(r)) return;
    value = usv(value);
    if (value === '') r.port = null;
    else parse(value, null, r, PORT);
  }

  get pathname() { return serializePath(internal(records, this)); }
  set pathname(value) {
    var r = internal(records, this);
    if (hasOpaquePath(r)) return;
    r.path = [];
    parse(usv(value), null, r, PATH_START);
  }

  get search() {
    var query = internal(records, this).query;
    return query ? '?' + query : '';
  }
  set search(value) {
    var r = internal(records, this);
    value = usv(value);
    r.query = value === '' ? null : '';
    if (value !== '') parse(value[0] === '?' ? value.slice(1) : value, null, r, QUERY);
    resetParams(this);
  }

  get searchParams() {
    internal(records, this);
    return paramsOf.get(this);
  }

  get hash() {
    var fragment = internal(records, this).fragment;
    return fragment ? '#' + fragment : '';
  }
  set hash(value) {
    var r = internal(records, this);
    value = usv(value);
    r.fragment = value === '' ? null : '';
    if (value !== '') parse(value[0] === '#' ? value.slice(1) : value, null, r, FRAGMENT);
  }

  toString() { return serialize(internal(records, this)); }
  toJSON() { return serialize(internal(records, this)); }
}

function isObject(v) {
  return (typeof v === 'object' && v !== null) || typeof v === 'function';
}

class URLSearchParams {
  constructor(init = undefined) {
    var list = [];
    if (isObject(init) && init[Symbol.iterator] != null) {
      // A sequence of [name, value] pairs (another URLSearchParams is one too).
      for (var pair of init) {
        if (!isObject(pair) || typeof pair[Symbol.iterator] !== 'function') {
          throw new TypeError('URLSearchParams: each pair must be an iterable [name, value]');
        }
        pair = Array.from(pair);
        if (pair.length !== 2) throw new TypeError('URLSearchParams: each pair must have exactly two items');
        list.push([usv(pair[0]), usv(pair[1])]);
      }
    } else if (isObject(init)) {
      // A record: own enumerable keys; a repeated key keeps its first place.
      Reflect.ownKeys(init).forEach(function (key) {
        var desc = Reflect.getOwnPropertyDescriptor(init, key);
        if (!desc || !desc.enumerable) return;
        var name = usv(key), value = usv(init[key]);
        var found = list.find(function (p) { return p[0] === name; });
        if (found) found[1] = value;
        else list.push([name, value]);
      });
    } else if (init !== undefined) {
      var s = usv(init);
      list = parseForm(s[0] === '?' ? s.slice(1) : s);
    }
    lists.set(this, { list: list, url: null });
  }

  get size() { return internal(lists, this).list.length; }

  append(name, value) {
    var state = internal(lists, this);
    requireArgs(arguments, 2, 'URLSearchParams.append');
    state.list.push([usv(name), usv(value)]);
    update(state);
  }

  delete(name, value = undefined) {
    var state = internal(lists, this);
    requireArgs(arguments, 1, 'URLSearchParams.delete');
    name = usv(name);
    value = value === undefined ? value : usv(value);
    state.list = state.list.filter(function (p) { return p[0] !== name || (value !== undefined && p[1] !== value); });
    update(state);
  }

  get(name) {
    var state = internal(lists, this);
    requireArgs(arguments, 1, 'URLSearchParams.get');
    name = usv(name);
    var found = state.list.find(function (p) { return p[0] === name; });
    return found ? found[1] : null;
  }

  getAll(name) {
    var state = internal(lists, this);
    requireArgs(arguments, 1, 'URLSearchParams.getAll');
    name = usv(name);
    return state.list.filter(function (p) { return p[0] === name; }).map(function (p) { return p[1]; });
  }

  has(name, value = undefined) {
    var state = internal(lists, this);
    requireArgs(arguments, 1, 'URLSearchParams.has');
    name = usv(name);
    value = value === undefined ? value : usv(value);
    return state.list.some(function (p) { return p[0] === name && (value === undefined || p[1] === value); });
  }

  set(name, value) {
    var state = internal(lists, this), seen = false;
    requireArgs(arguments, 2, 'URLSearchParams.set');
    name = usv(name);
    value = usv(value);
    // The first pair with this name takes the value; the others go.
    state.list = state.list.filter(function (p) {
      if (p[0] !== name) return true;
      if (seen) return false;
      p[1] = value;
      return (seen = true);
    });
    if (!seen) state.list.push([name, value]);
    update(state);
  }

  sort() {
    var state = internal(lists, this);
    // Array.prototype.sort is stable, and '<' compares UTF-16 code units.
    state.list.sort(function (a, b) { return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0; });
    update(state);
  }

  forEach(callback, thisArg = undefined) {
    var state = internal(lists, this);
    requireArgs(arguments, 1, 'URLSearchParams.forEach');
    if (typeof callback !== 'function') throw new TypeError('URLSearchParams.forEach: callback is not a function');
    // The list is read again at each turn: the callback may change it.
    for (var i = 0; i < state.list.length; i++) callback.call(thisArg, state.list[i][1], state.list[i][0], this);
  }

  keys() { return makeIterator(internal(lists, this), 0); }
  values() { return makeIterator(internal(lists, this), 1); }
  entries() { return makeIterator(internal(lists, this), 2); }

  toString() { return serializeForm(internal(lists, this).list); }
}

// Live iterators over the list, like the WebIDL pair iterators of browsers.
var iterators = new WeakMap();
var ParamsIteratorPrototype = Object.create(Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())), {
  next: {
    value: function next() {
      var it = internal(iterators, this), pair = it.state.list[it.index];
      if (!pair) return { value: undefined, done: true };
      it.index++;
      return { value: it.kind === 2 ? [pair[0], pair[1]] : pair[it.kind], done: false };
    },
    writable: true,
    enumerable: true,
    configurable: true,
  },
  [Symbol.toStringTag]: { value: 'URLSearchParams Iterator', configurable: true },
});

function makeIterator(state, kind) {
  var it = Object.create(ParamsIteratorPrototype);
  iterators.set(it, { state: state, kind: kind, index: 0 });
  return it;
}

Object.defineProperty(URLSearchParams.prototype, Symbol.iterator, {
  value: URLSearchParams.prototype.entries,
  writable: true,
  configurable: true,
});

[URL, URLSearchParams].forEach(function (cls) {
  // WebIDL members are enumerable; class syntax makes them not.
  Object.getOwnPropertyNames(cls.prototype).forEach(function (key) {
    if (key !== 'constructor') Object.defineProperty(cls.prototype, key, { enumerable: true });
  });
  Object.defineProperty(cls.prototype, Symbol.toStringTag, { value: cls.name, configurable: true });
  Object.defineProperty(globalThis, cls.name, { value: cls, writable: true, configurable: true, enumerable: false });
});
})();
