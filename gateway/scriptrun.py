"""`gateway script run`: a developer's "Run Script" on the local machine, nothing stored."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from gateway.datasets.sandbox import sandbox_for
from gateway.egress import AddressPolicy, EgressClient, RefusalHints
from gateway.settings import Settings
from runtime.host import Host
from runtime.model import JsonValue, Limits, Metadata, RunMode, RunRequest, RunResult, RunStatus
from runtime.pool import PoolConfig, WorkerPool
from writeback.datasets.errors import UploadRefused
from writeback.s3 import S3Objects
from writeback.scriptdata import LocalDataset, LocalDatasets, ScriptDatasets, load_local

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
# Refusals name the flag that would allow the call, not the service's settings.
HINTS: Final = RefusalHints(
    host="host {host} is not allowed (add --allow-host {host})",
    port="port {port} of host {host} is not allowed (add --allow-host {endpoint})",
    private=" (add --allow-private-network, or --allow-network {endpoint})",
    network=" (add --allow-network {endpoint})",
)
_SECRET_FIELDS: Final = frozenset(
    {"password", "apikey", "accesstoken", "refreshtoken", "clientsecret", "token", "secret"}
)


class UsageError(Exception):
    """Bad command-line input; exit code 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the flags of `script run`."""
    parser.add_argument("path", type=Path, help="the script file")
    parser.add_argument("--mode", choices=[m.value for m in RunMode], default="process")
    parser.add_argument("--account", help="account fields: a JSON object or @file.json")
    parser.add_argument("--parameters", help="parameter values: a JSON object or @file.json")
    parser.add_argument("--report", help="the report name (metadata.report)")
    parser.add_argument(
        "--allow-host",
        "--allowed-host",
        dest="allow_hosts",
        action="append",
        default=None,
        metavar="HOST",
        help="allow this host (default: every host)",
    )
    parser.add_argument(
        "--allow-private-network",
        action="store_true",
        default=None,
        help="let the script reach loopback and private addresses",
    )
    parser.add_argument("--allow-network", action="append", default=[], metavar="CIDR|HOST:PORT")
    parser.add_argument("--resolve", action="append", default=[], metavar="HOST:PORT:ADDRESS")
    parser.add_argument(
        "--connect-to",
        action="append",
        default=[],
        metavar="HOST1:PORT1:HOST2:PORT2",
        help="send requests for HOST1:PORT1 to HOST2:PORT2 (TLS still checks HOST1)",
    )
    parser.add_argument("--state", type=Path, help="JSON file where DOMO.setState persists")
    parser.add_argument(
        "--dataset",
        dest="datasets",
        action="append",
        default=[],
        metavar="ID=PATH[:NAME]",
        help="a CSV, JSON-lines or Parquet file the script reads as dataset ID (repeatable)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("--format", choices=["table", "json"], default="table")


def _json_object(text: str | None, flag: str) -> dict[str, JsonValue]:
    if text is None:
        return {}
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{flag}: cannot read {text[1:]}: {exc.strerror}") from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{flag}: must be a JSON object")
    return value


def build_request(args: argparse.Namespace) -> RunRequest:
    """Turn the flags into a run request.

    Raises:
        UsageError: a flag's value is unusable.
    """
    try:
        script = args.path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {args.path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{args.path} is not UTF-8 text") from exc
    if not 0 < args.timeout <= 24 * 3600:
        raise UsageError("--timeout must be between 0 and 86400 seconds")
    account = _json_object(args.account, "--account")
    secrets = tuple(
        str(value)
        for key, value in account.items()
        if key.lower() in _SECRET_FIELDS and isinstance(value, str | int | float)
    )
    return RunRequest(
        script=script,
        mode=RunMode(args.mode),
        metadata=Metadata(
            account=account,
            parameters=_json_object(args.parameters, "--parameters"),
            report=args.report,
        ),
        limits=Limits(wall_time_s=args.timeout, http_calls=10_000, result_rows=None),
        secrets=secrets,
    )


class FileState:
    """`--state FILE`: DOMO.getState/setState persisted in a JSON file between local runs."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _load(self) -> dict[str, JsonValue]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    async def get(self, key: str) -> JsonValue:
        """Return the stored value or None."""
        return self._load().get(key)

    async def set(self, key: str, value: JsonValue) -> None:
        """Store the value, writing the file aside and renaming it into place."""
        data = self._load()
        data[key] = value
        temporary = self._path.with_suffix(self._path.suffix + ".tmp")
        temporary.write_text(json.dumps(data, indent=2), encoding="utf-8")
        temporary.replace(self._path)


def parse_dataset(text: str) -> tuple[str, Path, str]:
    """`ID=PATH[:NAME]` as (id, path, name); the name defaults to the file's stem.

    A path that exists as written keeps its colons; otherwise the text after the last
    colon is the name.

    Raises:
        UsageError: no `=`, or an empty id or path.
    """
    dataset_id, sep, rest = text.partition("=")
    if not sep or not dataset_id or not rest:
        raise UsageError(f"--dataset {text!r}: write ID=PATH[:NAME]")
    path, name = Path(rest), ""
    if not path.exists() and ":" in rest:
        head, _, name = rest.rpartition(":")
        path = Path(head)
    return dataset_id, path, name or path.stem


def load_datasets(specs: Sequence[str], folder: Path) -> list[LocalDataset]:
    """Load every `--dataset` file into a part file in `folder` (blocking).

    Raises:
        UsageError: a bad flag, a repeated id, or a file DuckDB cannot load.
    """
    loaded: list[LocalDataset] = []
    for spec in specs:
        dataset_id, path, name = parse_dataset(spec)
        if any(d.info.id == dataset_id for d in loaded):
            raise UsageError(f"--dataset: the id {dataset_id!r} is given twice")
        if not path.is_file():
            raise UsageError(f"--dataset {spec!r}: no file {path}")
        try:
            loaded.append(load_local(dataset_id, path, name, folder))
        except ValueError as exc:
            raise UsageError(f"--dataset {spec!r}: {exc}") from exc
        except UploadRefused as exc:
            raise UsageError(f"--dataset {spec!r}: {exc.detail}") from exc
    return loaded


async def execute(args: argparse.Namespace, settings: Settings) -> RunResult:
    """Run the script once on a one-worker pool, under the settings plus the flags."""
    request = build_request(args)
    with tempfile.TemporaryDirectory(prefix="gateway-datasets-") as folder:
        local = await asyncio.to_thread(load_datasets, args.datasets, Path(folder))
        sandbox = sandbox_for(settings)
        try:
            async with ScriptDatasets(LocalDatasets(local), sandbox) as datasets:
                return await _execute(args, settings, request, datasets)
        finally:
            sandbox.close()


async def _execute(
    args: argparse.Namespace, settings: Settings, request: RunRequest, datasets: ScriptDatasets
) -> RunResult:
    policy = AddressPolicy(
        allow_private=settings.egress_allow_private or bool(args.allow_private_network),
        allowed_networks=(*settings.egress_allowed_networks, *args.allow_network),
        resolve=(*settings.egress_resolve, *args.resolve),
        connect_to=(*settings.egress_connect_to, *args.connect_to),
    )
    ca_file = str(settings.egress_ca_file) if settings.egress_ca_file else None
    async with EgressClient(policy, ca_file=ca_file, hints=HINTS) as egress:
        pool = WorkerPool(PoolConfig(size=1, address_space_mb=settings.worker_address_space_mb))
        await pool.start()
        try:
            hosts = tuple(args.allow_hosts) if args.allow_hosts else None
            http = egress.session(hosts, secrets=request.secrets)
            host = Host(
                http=http,
                aws=S3Objects(http),
                state=FileState(args.state) if args.state else None,
                datasets=datasets,
            )
            return await pool.run(request, host)
        finally:
            await pool.close()


def result_document(result: RunResult) -> dict[str, Any]:
    """The `--format json` object (a run result without `run_id`)."""
    return result.model_dump(mode="json")


def print_result(result: RunResult, output_format: str, out: TextIO = sys.stdout) -> None:
    """Print the result as one JSON object or as a readable table."""
    if output_format == "json":
        out.write(json.dumps(result_document(result), ensure_ascii=False) + "\n")
        return
    for line in result.logs:
        out.write(f"log: {line}\n")
    for hop in result.http:
        out.write(
            f"http: {hop.method} {hop.url} -> {hop.status or hop.error} "
            f"({hop.duration_ms:.0f} ms)\n"
        )
    if result.columns:
        out.write(_table([c.name for c in result.columns], result.rows))
    if result.auth is not None:
        verdict = "success" if result.auth.success else f"failed: {result.auth.message}"
        out.write(f"auth: {verdict}\n")
    if result.error is not None:
        where = f" (line {result.error.line})" if result.error.line else ""
        out.write(f"error: {result.error.code}: {result.error.message}{where}\n")
    out.write(f"status: {result.status.value} in {result.duration_ms:.1f} ms\n")


def _table(names: list[str], rows: list[list[JsonValue]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [
        min(40, max([len(n)] + [len(r[i]) for r in cells if i < len(r)]))
        for i, n in enumerate(names)
    ]

    def line(values: Sequence[str]) -> str:
        return " | ".join(v[:w].ljust(w) for v, w in zip(values, widths, strict=False)).rstrip()

    out = [line(names), "-+-".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out) + f"\n({len(rows)} rows)\n"


def exit_code(result: RunResult) -> int:
    """0 on success, 1 when the script failed in any way."""
    return EXIT_OK if result.status is RunStatus.SUCCESS else EXIT_FAILED


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point of `gateway script run`; returns the exit code."""
    try:
        result = asyncio.run(execute(args, settings))
    except (UsageError, ValueError) as exc:
        sys.stderr.write(f"gateway script run: {exc}\n")
        return EXIT_USAGE
    print_result(result, args.format)
    return exit_code(result)
