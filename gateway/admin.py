"""`gateway admin ...`: operator commands that work on the store directly."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.accounts.vault import RotationReport, rotate_secrets
from gateway.crypto import load_keyring, new_key_entry
from gateway.errors import Conflict
from gateway.identity.service import Customer, IdentityService, User
from gateway.settings import Settings
from gateway.store.engine import DATABASE_FILE, close_engine, create_engine, database_url_for
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
    token = commands.add_parser(
        "token", help="print a new API token for an existing user (a lost admin token)"
    )
    token.add_argument("--email", required=True, help="the user's email")
    token.add_argument(
        "--customer", help="the user's customer, when users of several share the email"
    )
    token.add_argument("--data-dir", type=Path)
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


class _Refused(Exception):
    """The command cannot do what was asked; the message is the one line to print."""


async def _token(settings: Settings, email: str, customer: str | None) -> str:
    if settings.database_url is None and not (settings.data_dir / DATABASE_FILE).is_file():
        raise _Refused(f"no gateway database in {str(settings.data_dir)!r}: use --data-dir")
    engine = create_engine(database_url_for(settings.database_url, settings.data_dir))
    try:
        await upgrade(engine)
        identity = IdentityService(engine)
        user, owner = await _only_user(identity, email, customer)
        _, token = await identity.issue_token(user, "admin token")
    finally:
        await close_engine(engine)
    sys.stderr.write(
        f"new token for {user.email} ({user.role.value} of {owner.name!r}); shown once\n"
    )
    return token


async def _only_user(
    identity: IdentityService, email: str, customer: str | None
) -> tuple[User, Customer]:
    found = [
        (user, owner)
        for user, owner in await identity.users_with_email(email)
        if customer is None or owner.name == customer
    ]
    if not found:
        within = f" in customer {customer!r}" if customer is not None else ""
        raise _Refused(
            f"no user with email {email!r}{within} "
            "(is --data-dir or GATEWAY_DATABASE_URL the gateway's?)"
        )
    if len(found) > 1:
        names = ", ".join(repr(owner.name) for _, owner in found)
        raise _Refused(f"users of several customers ({names}) have this email: use --customer")
    return found[0]


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
        if args.admin_command == "token":
            token = asyncio.run(_token(settings, args.email, args.customer))
        else:
            token = asyncio.run(_bootstrap(settings, args.customer, args.email))
    except Conflict as exc:
        sys.stderr.write(f"gateway admin {args.admin_command}: {exc.detail}\n")
        return 1
    except _Refused as exc:
        sys.stderr.write(f"gateway admin {args.admin_command}: {exc}\n")
        return 1
    # Alone on the last line of stdout, so scripts can take it with `tail -n 1`.
    sys.stdout.write(token + "\n")
    return 0
