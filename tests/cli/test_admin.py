"""`gateway admin bootstrap` and `gateway admin token`, through the real command."""

from __future__ import annotations

from pathlib import Path

from gateway.identity.principal import Principal, Role
from gateway.identity.service import IdentityService
from gateway.store.engine import close_engine, create_engine, database_url_for
from tests.cli.test_script_run import Completed, gateway


async def _principal(data_dir: Path, token: str) -> Principal | None:
    engine = create_engine(database_url_for(None, data_dir))
    try:
        return await IdentityService(engine).authenticate(token)
    finally:
        await close_engine(engine)


async def _admin(*args: str) -> Completed:
    return await gateway("admin", *args)


def _one_line(done: Completed) -> str:
    assert done.code == 1, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


async def test_a_lost_admin_token_is_replaced_from_the_command_line(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    first = await _admin(
        "bootstrap", "--customer", "acme", "--email", "root@acme.test", "--data-dir", data
    )
    assert first.code == 0, first.stderr
    # Bootstrapping again is refused and says how to get a token back.
    again = await _admin(
        "bootstrap", "--customer", "other", "--email", "x@y.test", "--data-dir", data
    )
    line = _one_line(again)
    assert "bootstrapped already" in line
    assert "gateway admin token --email EMAIL" in line

    done = await _admin("token", "--email", "Root@ACME.test", "--data-dir", data)
    assert done.code == 0, done.stderr
    token = done.stdout.splitlines()[-1]
    principal = await _principal(tmp_path / "data", token)
    assert principal is not None
    assert principal.role is Role.PLATFORM_ADMIN
    assert token not in done.stderr
    # The first token still works: a new one is added, nothing is revoked.
    assert await _principal(tmp_path / "data", first.stdout.splitlines()[-1]) is not None


async def test_token_refuses_an_unknown_email_or_data_dir(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    missing = _one_line(await _admin("token", "--email", "root@acme.test", "--data-dir", data))
    assert "--data-dir" in missing
    assert not (tmp_path / "data").exists()
    await _admin("bootstrap", "--customer", "acme", "--email", "root@acme.test", "--data-dir", data)
    line = _one_line(await _admin("token", "--email", "nobody@acme.test", "--data-dir", data))
    assert "no user with email 'nobody@acme.test'" in line


async def test_token_asks_for_the_customer_when_the_email_is_in_several(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    await _admin(
        "bootstrap", "--customer", "acme", "--email", "sam@example.test", "--data-dir", data
    )
    engine = create_engine(database_url_for(None, tmp_path / "data"))
    try:
        identity = IdentityService(engine)
        globex = await identity.create_customer("globex")
        sam = await identity.create_user(globex.id, "sam@example.test", "Sam", Role.MEMBER)
    finally:
        await close_engine(engine)
    line = _one_line(await _admin("token", "--email", "sam@example.test", "--data-dir", data))
    assert "--customer" in line
    assert "'acme'" in line
    assert "'globex'" in line
    done = await _admin(
        "token", "--email", "sam@example.test", "--customer", "globex", "--data-dir", data
    )
    assert done.code == 0, done.stderr
    principal = await _principal(tmp_path / "data", done.stdout.splitlines()[-1])
    assert principal is not None
    assert (principal.user_id, principal.role) == (sam.id, Role.MEMBER)
