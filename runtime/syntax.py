"""Parse a script the way a run would, without running any of it (the upload's syntax answer).

The QuickJS binding has no compile-only call, so the checker evaluates texts that throw
before their first statement: a Script is parsed whole before it runs, so its syntax errors
still surface and none of its code executes. Two parses cover the two grammars a run sees:
- `throw 0;` then the script, at the top level: catches what only a Script refuses (a
  top-level `return`, an unbalanced `}`), but its `"use strict"` is no longer a directive;
- the script as the body of a function that is never called: its directive prologue is
  kept, so it catches strict-mode errors of a strict script.
The first error of the two (by position) is the run's: before the top-level parse's error the
text is a valid sloppy Script, so an earlier error of the function parse is a strict-mode
error the run's parser meets too. Both pad the script with the run's blank lines, so lines
and columns are the script's own (runtime/js/core.js `lineOf`).
"""

from __future__ import annotations

from typing import Final

SYNTAX_CHECKER: Final = r"""
globalThis.__gw_check = function (text, offset) {
  const pad = '\n'.repeat(offset);
  const source = text.slice(0, 2) === '#!' ? '//' + text.slice(2) : text;  // as core.js does
  function attempt(text) {
    try {
      (0, eval)(text);
    } catch (error) {
      if (error === 0) return null;
      const stack = String(error && error.stack || '');
      const at = /<input>:(\d+):(\d+)/.exec(stack);
      const line = at ? Number(at[1]) - offset : null;
      return {
        message: String(error && error.name) + ': ' + String(error && error.message),
        line: line !== null && line > 0 ? line : null,
        column: at && line !== null && line > 0 ? Number(at[2]) : null,
      };
    }
    return { message: 'the script ran while it was checked', line: null, column: null };
  }
  function before(a, b) {
    if (a.line === null || b.line === null) return false;
    return a.line < b.line || (a.line === b.line && a.column < b.column);
  }
  const script = attempt('throw 0;' + pad + source);
  const body = attempt('throw 0;(function () {' + pad + source + '\n})');
  let error = script;
  if (body !== null && (script === null || before(body, script))) error = body;
  if (error === null) return JSON.stringify({ ok: true });
  return JSON.stringify({
    ok: false, message: error.message, line: error.line, column: error.column,
  });
};
"""
"""Defines `__gw_check(source, lineOffset)` in a bare Context; it answers JSON text."""
