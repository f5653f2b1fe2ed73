"""`gateway admin ...`: operator commands that work on the store directly."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.accounts.vault import RotationReport, rotate_secrets
from gateway.crypto import load_keyring, new_key_entry
from gateway.errors import Conflict
from gateway.identity.service import IdentityService
from gateway.settings import Settings
from gateway.store.engine import create_engine, database_url_for
from gateway.store.migrate import upgrade


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the `admin` subcommands."""
    commands = parser.add_subparsers(dest="admin_command", required=True)
    bootstrap = commands.add_parser(
        "bootstrap", help="create the first customer, a platform admin and its token"
    )
    bootstrap.add_argument("--customer", required=True, help="the first customer's name")
    bootstrap.add_argument("--email", required=True, help="the platform admin's email")
    bootstrap.add_argument("--data-dir", type=Path)
    commands.add_parser("generate-key", help="print a new encryption key entry")
    rotate = commands.add_parser(
        "rotate-key", help="re-encrypt every secret under the newest key (resumable)"
    )
    rotate.add_argument("--data-dir", type=Path)


async def _bootstrap(settings: Settings, customer: str, email: str) -> str:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url_for(settings.database_url, settings.data_dir))
    try:
        await upgrade(engine)
        admin, token = await IdentityService(engine).bootstrap(customer, email)
    finally:
        await engine.dispose()
    sys.stderr.write(
        f"created customer {customer!r} and platform admin {admin.email} ({admin.id}); "
        "the token below is shown once\n"
    )
    return token


async def _rotate(settings: Settings) -> RotationReport:
    keyring, _ = load_keyring(settings.encryption_keys, settings.data_dir)
    engine = create_engine(database_url_for(settings.database_url, settings.data_dir))
    try:
        await upgrade(engine)
        return await rotate_secrets(engine, keyring)
    finally:
        await engine.dispose()


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run an admin subcommand; returns the exit code."""
    if args.admin_command == "generate-key":
        sys.stdout.write(new_key_entry() + "\n")
        sys.stderr.write(
            "put it first in GATEWAY_ENCRYPTION_KEYS (newest first), keep the old keys after "
            "it, then run `gateway admin rotate-key`\n"
        )
        return 0
    if args.admin_command == "rotate-key":
        report = asyncio.run(_rotate(settings))
        sys.stdout.write(
            f"re-encrypted {report.resealed} secrets ({report.skipped} changed meanwhile "
            "and were left as their writer sealed them)\n"
        )
        return 0
    try:
        token = asyncio.run(_bootstrap(settings, args.customer, args.email))
    except Conflict as exc:
        sys.stderr.write(f"gateway admin bootstrap: {exc.detail}\n")
        return 1
    # Alone on the last line of stdout, so scripts can take it with `tail -n 1`.
    sys.stdout.write(token + "\n")
    return 0
