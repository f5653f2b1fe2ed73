// structuredClone(), after the HTML Standard's structured serialisation
// (https://html.spec.whatwg.org/multipage/structured-data.html).
//
// A self-contained classic script (ES2020) that the runtime evaluates lazily, the
// first time a connector script touches `structuredClone`. It defines exactly
// that global and nothing else. No I/O.
//
// Cloned: primitives (not symbols), plain objects, arrays, Date, RegExp, Map, Set,
// ArrayBuffer, typed arrays, DataView, Boolean/Number/String/BigInt wrappers, the
// standard Error types and DOMException, with cycles and shared references kept.
// Functions, symbols, promises, weak collections and platform-like objects throw
// a DOMException named "DataCloneError", as browsers do.
//
// The graph is walked depth-first with an explicit stack rather than recursion,
// so deep structures (long linked lists) cannot overflow the native stack, and
// each property is read in the order the standard reads it.
(function () {
'use strict';

// Built-ins are captured now, so that a script replacing them changes nothing.
var objectTag = Object.prototype.toString;
var hasOwn = Object.prototype.hasOwnProperty;
var defineProperty = Object.defineProperty;
var getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
var objectKeys = Object.keys;
var isArray = Array.isArray;
var isView = ArrayBuffer.isView;
var NativeDOMException = typeof DOMException === 'function' ? DOMException : null;

function getter(proto, name) {
  var desc = proto && getOwnPropertyDescriptor(proto, name);
  return desc ? desc.get : undefined;
}

var TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);
var typedArrayName = getter(TypedArrayPrototype, Symbol.toStringTag);
var bufferByteLength = getter(ArrayBuffer.prototype, 'byteLength');
var bufferResizable = getter(ArrayBuffer.prototype, 'resizable'); // ES2024, may be missing
var bufferMaxByteLength = getter(ArrayBuffer.prototype, 'maxByteLength');
var bufferDetached = getter(ArrayBuffer.prototype, 'detached');
var bufferSlice = ArrayBuffer.prototype.slice;
var bufferTransfer = ArrayBuffer.prototype.transfer;
var regExpSource = getter(RegExp.prototype, 'source');
var regExpFlags = getter(RegExp.prototype, 'flags');
var dateValue = Date.prototype.getTime;
var mapHas = Map.prototype.has, mapForEach = Map.prototype.forEach, mapSet = Map.prototype.set;
var setHas = Set.prototype.has, setForEach = Set.prototype.forEach, setAdd = Set.prototype.add;
var valueOf = {
  Boolean: Boolean.prototype.valueOf, Number: Number.prototype.valueOf,
  String: String.prototype.valueOf, BigInt: BigInt.prototype.valueOf,
};
var arrayPush = Array.prototype.push;

var TYPED_ARRAYS = {};
['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float16Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'].forEach(function (name) {
  if (typeof globalThis[name] === 'function') TYPED_ARRAYS[name] = globalThis[name];
});

var ERRORS = {
  Error: Error, EvalError: EvalError, RangeError: RangeError, ReferenceError: ReferenceError,
  SyntaxError: SyntaxError, TypeError: TypeError, URIError: URIError,
};

// Built-in objects with internal state that cannot be serialised, by their
// Object.prototype.toString tag, including this runtime's own platform objects.
var NOT_CLONEABLE = new Set([
  'Promise', 'WeakMap', 'WeakSet', 'WeakRef', 'FinalizationRegistry', 'Generator', 'AsyncGenerator',
  'Map Iterator', 'Set Iterator', 'Array Iterator', 'String Iterator', 'RegExp String Iterator',
  'Iterator Helper', 'Iterator Wrap', 'DisposableStack', 'AsyncDisposableStack', 'Module', 'Performance',
  'URL', 'URLSearchParams', 'URLSearchParams Iterator', 'TextEncoder', 'TextDecoder',
]);

function dataCloneError(message) {
  if (NativeDOMException) return new NativeDOMException(message, 'DataCloneError');
  var error = new Error(message);
  defineProperty(error, 'name', { value: 'DataCloneError', writable: true, configurable: true });
  return error;
}

function describe(value) {
  if (typeof value === 'object') return `#<${objectTag.call(value).slice(8, -1)}>`;
  var text = String(value);
  return text.length > 80 ? text.slice(0, 77) + '...' : text;
}

// Is this a real instance of a built-in? The check calls a method that only
// accepts real instances; the tag alone could come from Symbol.toStringTag.
function is(check, value) {
  try {
    check(value);
    return true;
  } catch (e) {
    return false;
  }
}

function isBuffer(value) {
  return is(function (v) { bufferByteLength.call(v); }, value);
}

function isDetached(buffer) {
  if (bufferDetached) return bufferDetached.call(buffer);
  return false;
}

function copyBuffer(buffer) {
  if (isDetached(buffer)) throw dataCloneError('An ArrayBuffer is detached and could not be cloned.');
  if (bufferResizable && bufferResizable.call(buffer)) {
    var copy = new ArrayBuffer(bufferByteLength.call(buffer), { maxByteLength: bufferMaxByteLength.call(buffer) });
    new Uint8Array(copy).set(new Uint8Array(buffer));
    return copy;
  }
  return bufferSlice.call(buffer, 0);
}

// Property descriptor reused for every data property the clone receives.
var dataProperty = { value: undefined, writable: true, enumerable: true, configurable: true };

function defineData(target, key, value, enumerable) {
  dataProperty.value = value;
  dataProperty.enumerable = enumerable;
  defineProperty(target, key, dataProperty);
  dataProperty.value = undefined;
}

// Frame kinds: what the items of a frame are, and where their clones go.
var PROPERTIES = 1, MAP = 2, SET = 3, ERROR_CAUSE = 4;

function structuredClone(value, options = undefined) {
  if (arguments.length < 1) throw new TypeError('structuredClone: 1 argument required, but only 0 present');
  var transfer = transferList(options);
  var memory = new Map(); // original object -> its clone
  var stack = []; // frames: { kind, source, target, items, index, key }

  // Returns the clone of value: a primitive, an object seen before, or a new
  // object whose contents are filled in later, from a frame pushed on the stack.
  function clone(value) {
    var type = typeof value;
    if (type === 'symbol' || type === 'function') throw dataCloneError(`${describe(value)} could not be cloned.`);
    if (value === null || type !== 'object') return value;
    if (memory.has(value)) return memory.get(value);
    var copy = shallowCopy(value);
    memory.set(value, copy.target);
    if (copy.items && copy.items.length) {
      copy.source = value;
      copy.index = 0;
      stack.push(copy);
    }
    return copy.target;
  }

  // Clones the shell of an object, and lists what is still to be copied into it.
  function shallowCopy(value) {
    if (value === globalThis) throw dataCloneError(`${describe(value)} could not be cloned.`);
    if (isArray(value)) return { kind: PROPERTIES, target: new Array(value.length), items: objectKeys(value) };
    if (isView(value)) return { target: copyView(value) };
    var tag = objectTag.call(value).slice(8, -1);
    switch (tag) {
      case 'ArrayBuffer':
        if (isBuffer(value)) return { target: copyBuffer(value) };
        break;
      case 'SharedArrayBuffer':
        // Like a browser page that is not cross-origin isolated.
        throw dataCloneError('A SharedArrayBuffer could not be cloned.');
      case 'Date':
        if (is(function (v) { dateValue.call(v); }, value)) return { target: new Date(dateValue.call(value)) };
        break;
      case 'RegExp':
        if (is(function (v) { regExpSource.call(v); }, value)) {
          return { target: new RegExp(regExpSource.call(value), regExpFlags.call(value)) };
        }
        break;
      case 'Boolean':
      case 'Number':
      case 'String':
      case 'BigInt':
        var primitive = valueOf[tag];
        if (is(function (v) { primitive.call(v); }, value)) return { target: Object(primitive.call(value)) };
        break;
      case 'Symbol':
        throw dataCloneError(`${describe(value)} could not be cloned.`);
      case 'Map':
        if (is(function (v) { mapHas.call(v); }, value)) {
          var entries = [];
          mapForEach.call(value, function (v, k) { arrayPush.call(entries, k, v); });
          return { kind: MAP, target: new Map(), items: entries };
        }
        break;
      case 'Set':
        if (is(function (v) { setHas.call(v); }, value)) {
          var members = [];
          setForEach.call(value, function (v) { arrayPush.call(members, v); });
          return { kind: SET, target: new Set(), items: members };
        }
        break;
    }
    if (NativeDOMException && value instanceof NativeDOMException) {
      return { target: new NativeDOMException(String(value.message), String(value.name)) };
    }
    if (tag === 'Error' && !(Symbol.toStringTag in value)) return copyError(value);
    if (NOT_CLONEABLE.has(tag)) throw dataCloneError(`${describe(value)} could not be cloned.`);
    // Anything else is copied as a plain object: own enumerable string keys.
    return { kind: PROPERTIES, target: {}, items: objectKeys(value) };
  }

  function copyView(view) {
    var buffer = view.buffer;
    if (!isBuffer(buffer)) throw dataCloneError('A view on a SharedArrayBuffer could not be cloned.');
    var copy = clone(buffer); // through memory, so views sharing a buffer still share it
    var name = typedArrayName.call(view);
    if (name === undefined) return new DataView(copy, view.byteOffset, view.byteLength);
    return new TYPED_ARRAYS[name](copy, view.byteOffset, view.length);
  }

  // An error keeps its type (one of the standard ones, else Error), message,
  // stack and cause; other properties are not serialised.
  function copyError(error) {
    var name = error.name;
    var Constructor = hasOwn.call(ERRORS, name) ? ERRORS[name] : Error;
    var desc = getOwnPropertyDescriptor(error, 'message');
    var target = desc && 'value' in desc ? new Constructor(String(desc.value)) : new Constructor();
    var stack = getOwnPropertyDescriptor(error, 'stack');
    if (stack && typeof stack.value === 'string') defineData(target, 'stack', stack.value, false);
    var cause = getOwnPropertyDescriptor(error, 'cause');
    return { kind: ERROR_CAUSE, target: target, items: cause && 'value' in cause ? [cause.value] : [] };
  }

  // Copies one item of the frame on top of the stack.
  function step(frame) {
    var item = frame.items[frame.index++];
    switch (frame.kind) {
      case PROPERTIES:
        // A getter met earlier may have deleted this key since.
        if (hasOwn.call(frame.source, item)) defineData(frame.target, item, clone(frame.source[item]), true);
        break;
      case MAP:
        // Items alternate key, value; the key's clone waits for its value's.
        if (frame.index % 2) frame.key = clone(item);
        else mapSet.call(frame.target, frame.key, clone(item));
        break;
      case SET:
        setAdd.call(frame.target, clone(item));
        break;
      case ERROR_CAUSE:
        defineData(frame.target, 'cause', clone(item), false);
        break;
    }
  }

  var result = clone(value);
  while (stack.length) {
    var frame = stack[stack.length - 1];
    if (frame.index < frame.items.length) step(frame);
    else stack.pop();
  }
  // Transferred buffers were copied like the others; now the originals go.
  transfer.forEach(function (buffer) { bufferTransfer.call(buffer); });
  return result;
}

// options.transfer: ArrayBuffers that are detached once the clone is made.
function transferList(options) {
  if (options === undefined || options === null) return [];
  if (typeof options !== 'object' && typeof options !== 'function') {
    throw new TypeError('structuredClone: options must be an object');
  }
  if (options.transfer === undefined) return [];
  var list = Array.from(options.transfer);
  list.forEach(function (item, i) {
    if (item === null || (typeof item !== 'object' && typeof item !== 'function')) {
      throw new TypeError('structuredClone: transfer list items must be objects');
    }
    if (!isBuffer(item) || !bufferTransfer) throw dataCloneError(`${describe(item)} is not transferable.`);
    if (list.indexOf(item) !== i) throw dataCloneError('An ArrayBuffer is listed twice in the transfer list.');
    if (isDetached(item)) throw dataCloneError('An ArrayBuffer in the transfer list is detached.');
  });
  return list;
}

defineProperty(globalThis, 'structuredClone', {
  value: structuredClone,
  writable: true,
  configurable: true,
  enumerable: false,
});
})();
