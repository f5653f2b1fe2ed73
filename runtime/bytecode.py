"""The prelude compiled to QuickJS bytecode once per worker, loaded into each fresh Context.

Parsing and compiling the prelude is nearly all of a Context's preparation; reading bytecode
is a fraction of it (docs/decisions/0016-prelude-bytecode.md). The quickjs-ng binding has no
bytecode API, but its shared object exports QuickJS's own `JS_*` functions: they are bound
here with ctypes, only for the exact binding version whose `Context` layout is known, and only
after a self-test. Anything else falls back to evaluating the prelude's source.

The bytecode lives in this process's memory only: it is compiled here from the prelude's
source and never read from disk or from a caller (QuickJS trusts bytecode blindly).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar, Final, Protocol

BINDING_VERSION: Final = "0.17.0.2"
"""The quickjs-ng distribution whose `_quickjs.Context` layout this module relies on."""
QUICKJS_VERSION: Final = b"0.17.0"
FILENAME: Final = b"<input>"
"""The name the binding gives all code: stack frames must read the same (core.js `lineOf`)."""

_EVAL_COMPILE_ONLY: Final = 1 << 5  # JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY
_WRITE_BYTECODE: Final = 1 << 0  # debug info and source kept: stack lines stay exact
_READ_BYTECODE: Final = 1 << 0
_MACHINES: Final = frozenset({"x86_64", "aarch64"})
"""Where a `JSValue` is a 16-byte struct passed in two integer registers, as `_JSValue` is."""
_TAG_FUNCTION_BYTECODE: Final = -2
_TAG_EXCEPTION: Final = 6
_SELF_TEST: Final = "(function () { globalThis.__gw_probe = [6 * 7, new Error('p').stack]; })();"
_SELF_TEST_SOURCE: Final = "\n\n" + _SELF_TEST


class BytecodeError(RuntimeError):
    """QuickJS refused to compile, write, read or evaluate the prelude's bytecode."""


class Prelude(Protocol):
    """Puts the prelude into a fresh Context (as bytecode or as source)."""

    @property
    def kind(self) -> str:
        """`bytecode` or `source`."""

    def load(self, context: Any) -> None:
        """Evaluate the prelude in `context`.

        Raises:
            quickjs.JSException: the source path failed to evaluate.
            BytecodeError: the bytecode path failed to evaluate.
        """


@dataclass(frozen=True, slots=True)
class SourcePrelude:
    """The fallback: the prelude's text, parsed and compiled in every Context."""

    source: str
    kind: ClassVar[str] = "source"

    def load(self, context: Any) -> None:
        """Evaluate the prelude's source in `context`."""
        context.eval(self.source)


class _JSValue(ctypes.Structure):
    # 64-bit builds without NaN boxing: a 16-byte struct {union u; int64_t tag;} by value.
    _fields_ = (("u", ctypes.c_int64), ("tag", ctypes.c_int64))


_Pointer = ctypes.c_void_p


class _Api:
    """The few QuickJS functions the binding's shared object exports that are used here.

    They are called with the GIL held (`PyDLL`): the binding releases it only around its own
    calls, and a host callable invoked from here would find no thread state to resume. The
    prelude's top level only captures its callables, it never calls one.
    """

    def __init__(self, library: ctypes.PyDLL) -> None:
        def bind(name: str, result: Any, *arguments: Any) -> Any:
            function = getattr(library, name)
            function.restype = result
            function.argtypes = list(arguments)
            return function

        size = ctypes.POINTER(ctypes.c_size_t)
        self.version = bind("JS_GetVersion", ctypes.c_char_p)
        self.get_runtime = bind("JS_GetRuntime", _Pointer, _Pointer)
        self.runtime_opaque = bind("JS_GetRuntimeOpaque", _Pointer, _Pointer)
        self.update_stack_top = bind("JS_UpdateStackTop", None, _Pointer)
        self.eval = bind(
            "JS_Eval", _JSValue, _Pointer, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
            ctypes.c_int,
        )  # fmt: skip
        self.write = bind("JS_WriteObject", _Pointer, _Pointer, size, _JSValue, ctypes.c_int)
        self.read = bind(
            "JS_ReadObject", _JSValue, _Pointer, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int
        )
        self.eval_function = bind("JS_EvalFunction", _JSValue, _Pointer, _JSValue)
        self.free_value = bind("JS_FreeValue", None, _Pointer, _JSValue)
        self.get_exception = bind("JS_GetException", _JSValue, _Pointer)
        self.free = bind("js_free", None, _Pointer, _Pointer)

    def context_of(self, context: Any) -> tuple[int, int]:
        """The `JSRuntime*` and `JSContext*` a binding `Context` holds, checked.

        `_quickjs.Context` is `{PyObject_HEAD; JSRuntime *runtime; JSContext *context; ...}`
        and the binding makes the Python object its runtime's opaque: both pointers are
        confirmed by QuickJS itself before either is used.

        Raises:
            BytecodeError: the object does not have that layout.
        """
        if type(context).__basicsize__ < object.__basicsize__ + 2 * ctypes.sizeof(_Pointer):
            raise BytecodeError("unexpected Context layout")
        base = id(context) + object.__basicsize__
        runtime = _Pointer.from_address(base).value
        js_context = _Pointer.from_address(base + ctypes.sizeof(_Pointer)).value
        if not runtime or not js_context or self.runtime_opaque(runtime) != id(context):
            raise BytecodeError("unexpected Context layout")
        if self.get_runtime(js_context) != runtime:
            raise BytecodeError("unexpected Context layout")
        return runtime, js_context

    def compile(self, context: Any, source: str) -> bytes:
        """The bytecode of `source` as a global script named `<input>`, debug info kept.

        Raises:
            BytecodeError: the source did not compile or could not be written.
        """
        runtime, js_context = self.context_of(context)
        text = source.encode()
        self.update_stack_top(runtime)
        function = self.eval(js_context, text, len(text), FILENAME, _EVAL_COMPILE_ONLY)
        if function.tag != _TAG_FUNCTION_BYTECODE:
            self._discard(js_context, function)
            raise BytecodeError("the prelude did not compile")
        size = ctypes.c_size_t()
        buffer = self.write(js_context, ctypes.byref(size), function, _WRITE_BYTECODE)
        self.free_value(js_context, function)
        if not buffer:
            self._discard(js_context, self.get_exception(js_context))
            raise BytecodeError("the prelude's bytecode could not be written")
        try:
            return ctypes.string_at(buffer, size.value)
        finally:
            self.free(js_context, buffer)

    def run(self, context: Any, code: bytes) -> None:
        """Read `code` (bytecode this process compiled) into `context` and evaluate it.

        Raises:
            BytecodeError: reading or evaluating it threw.
        """
        runtime, js_context = self.context_of(context)
        self.update_stack_top(runtime)
        function = self.read(js_context, code, len(code), _READ_BYTECODE)
        if function.tag != _TAG_FUNCTION_BYTECODE:
            self._discard(js_context, function)
            raise BytecodeError("the prelude's bytecode could not be read")
        result = self.eval_function(js_context, function)  # takes `function` over
        self._discard(js_context, result)
        if result.tag == _TAG_EXCEPTION:
            raise BytecodeError("the prelude's bytecode threw")

    def _discard(self, js_context: int, value: _JSValue) -> None:
        if value.tag == _TAG_EXCEPTION:
            value = self.get_exception(js_context)  # clears the pending exception
        self.free_value(js_context, value)


@dataclass(frozen=True, slots=True)
class BytecodePrelude:
    """The prelude compiled once; each Context reads and evaluates the bytecode."""

    api: _Api
    code: bytes
    kind: ClassVar[str] = "bytecode"

    def load(self, context: Any) -> None:
        """Evaluate the prelude's bytecode in `context`.

        Raises:
            BytecodeError: QuickJS refused it (the caller falls back to the source).
        """
        self.api.run(context, self.code)


def _bind(binding_version: str) -> _Api:
    """Bind the exported functions of the loaded `_quickjs`, for the one known version.

    Raises:
        BytecodeError: another binding or platform, or a symbol is missing.
    """
    if binding_version != BINDING_VERSION:
        raise BytecodeError(f"quickjs-ng {binding_version} is not {BINDING_VERSION}")
    if (
        sys.implementation.name != "cpython"
        or not sys.platform.startswith("linux")
        or platform.machine() not in _MACHINES
    ):
        raise BytecodeError("only CPython on 64-bit Linux is supported")
    import _quickjs

    mode = os.RTLD_NOW | os.RTLD_NOLOAD  # the binding's own copy, never a second one
    try:
        api = _Api(ctypes.PyDLL(_quickjs.__file__, mode=mode))
    except (OSError, AttributeError) as exc:
        raise BytecodeError(f"cannot bind QuickJS: {exc}") from exc
    if api.version() != QUICKJS_VERSION:
        raise BytecodeError("unexpected QuickJS version")
    return api


def _self_test(api: _Api) -> None:
    """A round trip from one Context to another must behave as the source does.

    Raises:
        BytecodeError: it did not.
    """
    import quickjs

    code = api.compile(quickjs.Context(), _SELF_TEST_SOURCE)
    by_bytecode, by_source = quickjs.Context(), quickjs.Context()
    api.run(by_bytecode, code)
    by_source.eval(_SELF_TEST_SOURCE)
    expected = by_source.get("__gw_probe").json()
    if by_bytecode.get("__gw_probe").json() != expected:
        raise BytecodeError("the self-test's bytecode behaved unlike its source")


def compile_prelude(source: str, *, binding_version: str | None = None) -> Prelude:
    """The prelude as bytecode when this binding supports it, else as source.

    `binding_version` stands for the installed quickjs-ng distribution's (tests force the
    fallback with another).
    """
    import quickjs

    version = binding_version or metadata.version("quickjs-ng")
    try:
        api = _bind(version)
        _self_test(api)
        return BytecodePrelude(api, api.compile(quickjs.Context(), source))
    except (BytecodeError, quickjs.JSException):
        return SourcePrelude(source)
