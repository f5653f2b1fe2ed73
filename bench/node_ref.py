"""Section 5: the `addCell` ingest script under Node.js `vm`, as a reference for the engine.

Two variants run in a fresh `vm` context each time, timed by node itself:
- minimal: a small `datagrid` (addColumn/addCell/endRow) that checks STRING and DOUBLE cells
  the way the prelude does, pushes rows into arrays and JSON-encodes a chunk every 10,000 rows
  (the prelude's emit, without the pipe);
- prelude: the gateway's own prelude (`runtime.worker.build_prelude()`) with stub callables.
A third, `main`, runs the minimal one in node's own context (no `vm`): V8 without the slow
global lookups of a contextified global. The script text is exactly section 3's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from bench.common import Budget, Row, median
from bench.scripts import INGEST_CELLS, INGEST_SCRIPT
from runtime.worker import build_prelude

SECTION = "5 node ref"
REPS = 3

NODE_JS: Final = r"""
'use strict';
const vm = require('vm');
const fs = require('fs');
const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const deadline = Date.now() + input.budgetMs;

const MINIMAL = `(function () {
  const BAD = {};
  const convs = [], names = [];
  let cur = [], chunk = [], total = 0;
  function toString(v) {
    if (typeof v === 'string') return v === '' ? null : v;
    if (v === null || v === undefined) return null;
    return String(v);
  }
  function toDouble(v) {
    if (typeof v === 'number') return v - v === 0 ? v : BAD;
    if (typeof v === 'string') {
      if (v === '') return null;
      const n = +v;
      if (n - n !== 0) return BAD;
      return n === 0 && v.trim() === '' ? null : n;
    }
    if (v === null || v === undefined) return null;
    return BAD;
  }
  const TYPES = { STRING: toString, DOUBLE: toDouble };
  function flush() {
    const rows = chunk;
    chunk = [];
    __emit(JSON.stringify({ columns: names, rows }));
  }
  globalThis.datagrid = {
    DATA_TYPE_STRING: 'STRING',
    DATA_TYPE_DOUBLE: 'DOUBLE',
    addColumn(name, type) {
      const conv = TYPES[String(type).toUpperCase()];
      if (conv === undefined) throw new Error('unknown type ' + type);
      convs.push(conv);
      names.push(String(name));
    },
    addCell(v) {
      const i = cur.length;
      if (i >= convs.length) throw new Error('more cells than columns');
      const cell = convs[i](v);
      if (cell === BAD) throw new Error('bad cell in column ' + (i + 1));
      cur.push(cell);
    },
    endRow() {
      chunk.push(cur);
      cur = [];
      total++;
      if (chunk.length >= 10000) flush();
    },
  };
  globalThis.__finish = function () {
    if (chunk.length) flush();
    return JSON.stringify({ status: 'success', rows: total });
  };
})();`;

function stubs(state) {
  return {
    __emit(text) { state.chars += text.length; },
    __gw_host() { return '{"error":{"code":"unavailable","message":"stub"}}'; },
    __gw_log() {},
    __gw_emit(text) { state.chars += text.length; },
    __gw_fatal(text) { state.fatal = text; },
    __gw_sleep() {},
    __gw_util() { return '{"error":"stub"}'; },
    __gw_source() { return ''; },
  };
}

const RUN_JSON = JSON.stringify(
  { mode: 'process', metadata: {}, chunkRows: 10000, resultRows: null });

// `main`: the minimal datagrid in node's own context (no vm), for V8 without the vm's
// contextified global, whose property lookups (`datagrid`, the script's `var`s) are slow.
function execute(variant, state) {
  if (variant === 'main') {
    Object.assign(globalThis, stubs(state));
    vm.runInThisContext(MINIMAL);
    const started = process.hrtime.bigint();
    vm.runInThisContext(input.script);
    return [started, globalThis.__finish()];
  }
  const context = vm.createContext(stubs(state));
  vm.runInContext(variant === 'minimal' ? MINIMAL : input.prelude, context);
  const started = process.hrtime.bigint();
  if (variant === 'minimal') {
    vm.runInContext(input.script, context);
    return [started, context.__finish()];
  }
  context.__gw_run(input.script, RUN_JSON);
  return [started, context.__gw_finish() || state.fatal];
}

function once(variant) {
  const state = { chars: 0, fatal: null };
  const [started, result] = execute(variant, state);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const status = JSON.parse(result).status;
  if (status !== 'success') throw new Error(variant + ' run failed: ' + result.slice(0, 300));
  return seconds;
}

const out = { node: process.version, minimal: [], prelude: [], main: [], cut: false };
for (const variant of ['minimal', 'prelude', 'main']) {
  for (let i = 0; i < input.reps; i++) {
    if (Date.now() > deadline) { out.cut = true; break; }
    out[variant].push(once(variant));
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
"""


async def _node(node: str, directory: Path, budget: Budget) -> dict[str, Any]:
    script, data = directory / "ref.js", directory / "input.json"
    script.write_text(NODE_JS, encoding="utf-8")
    payload = {
        "script": INGEST_SCRIPT,
        "prelude": build_prelude(),
        "reps": REPS,
        "budgetMs": int(budget.remaining() * 1000 * 0.8),
    }
    data.write_text(json.dumps(payload), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        node, str(script), str(data), stdout=asyncio.subprocess.PIPE, cwd=directory
    )
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), budget.remaining())
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise RuntimeError("node did not finish within the section's time budget") from None
    if process.returncode != 0:
        raise RuntimeError(f"node exited with status {process.returncode}")
    parsed: dict[str, Any] = json.loads(stdout)
    return parsed


def _rate(seconds: Sequence[float]) -> float:
    middle = median(seconds)
    return INGEST_CELLS / middle if middle > 0 else math.nan


def _ratio(rows: Sequence[Row], key: str, reference: float) -> float:
    values = [row.value for row in rows if row.key == key and row.value is not None]
    return values[0] / reference if values and reference > 0 else math.nan


def _rows(out: dict[str, Any], previous: Sequence[Row]) -> list[Row]:
    minimal, prelude, main = _rate(out["minimal"]), _rate(out["prelude"]), _rate(out["main"])
    version = str(out["node"])
    cut = "time budget hit; " if out.get("cut") else ""
    return [
        Row("node.minimal.cells_per_s", SECTION, "node vm, minimal datagrid, cells/s", minimal,
            "cells/s", note=f"{cut}node {version}, median of {len(out['minimal'])}"),
        Row("node.prelude.cells_per_s", SECTION, "node vm, gateway prelude, cells/s", prelude,
            "cells/s", note=f"median of {len(out['prelude'])}"),
        Row("node.main.cells_per_s", SECTION, "node main context (no vm), minimal, cells/s",
            main, "cells/s", note=f"median of {len(out['main'])}"),
        Row("ratio.pool_vs_node_minimal", SECTION, "gateway pool run / node vm minimal",
            _ratio(previous, "ingest.pool.cells_per_s", minimal), "x", note="> 1: gateway faster"),
        Row("ratio.pool_vs_node_main", SECTION, "gateway pool run / node main context",
            _ratio(previous, "ingest.pool.cells_per_s", main), "x"),
        Row("ratio.js_only_vs_node_prelude", SECTION, "QuickJS / node, same prelude",
            _ratio(previous, "ingest.js_only.cells_per_s", prelude), "x",
            note="engine vs engine on identical code"),
    ]  # fmt: skip


async def run_section(budget: Budget, previous: Sequence[Row]) -> list[Row]:
    """Run the reference in node (if installed) and compare with section 3."""
    node = shutil.which("node")
    if node is None:
        return [Row("node.skipped", SECTION, "node not found", None, "", status="SKIP")]
    with tempfile.TemporaryDirectory(prefix="bench-node-") as directory:
        out = await _node(node, Path(directory), budget)
    return _rows(out, previous)
