"""The `gateway` command: `serve` and `script run` (the only place that reads the environment)."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import structlog

from gateway import admin, scriptrun
from gateway.app import create_app
from gateway.logconfig import configure_logging
from gateway.server import serve
from gateway.settings import Settings, SettingsError, load_settings

_BACKLOG: Final = 128  # aiohttp's own default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Actions & Writeback Gateway")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", type=Path)

    admin.add_arguments(commands.add_parser("admin", help="operator commands"))

    script = commands.add_parser("script", help="work with connector scripts locally")
    script_commands = script.add_subparsers(dest="script_command", required=True)
    scriptrun.add_arguments(script_commands.add_parser("run", help="run a script once"))
    return parser


def _serve(settings: Settings) -> int:
    try:
        listener = _listen(settings.host, settings.port)
    except OSError as exc:
        sys.stderr.write(f"gateway: {_listen_failure(settings, exc)}\n")
        return 2
    # With port 0 the system chose the port: the log and the OAuth redirect URI name it.
    settings = settings.model_copy(update={"port": listener.getsockname()[1]})
    configure_logging()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    structlog.get_logger(__name__).info(
        "gateway_starting",
        url=f"http://{settings.host}:{settings.port}",
        data_dir=str(settings.data_dir),
        workers=settings.workers,
    )
    serve(create_app(settings), sock=listener)
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts (a taken port is one clear line)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=_BACKLOG)


def _listen_failure(settings: Settings, exc: OSError) -> str:
    port_advice = "choose another with GATEWAY_PORT or --port"
    if exc.errno == errno.EADDRINUSE:
        return f"port {settings.port} on {settings.host} is in use already: {port_advice}"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {settings.port}: {port_advice}"
    # An unknown name, or an address this machine does not have.
    return f"cannot listen on host {settings.host!r}: set GATEWAY_HOST or --host"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(load_settings(host=args.host, port=args.port, data_dir=args.data_dir))
        if args.command == "admin":
            data_dir = getattr(args, "data_dir", None)
            return admin.run_command(args, load_settings(data_dir=data_dir))
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"gateway: invalid setting: {exc}\n")
        return 2
    return scriptrun.run_command(args, settings)


if __name__ == "__main__":
    sys.exit(main())
