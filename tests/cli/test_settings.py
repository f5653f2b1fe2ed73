"""Bad settings stop `gateway serve` with exit 2 and one line naming the variable (SPEC 9.1)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cli.test_script_run import Completed, gateway


def _refusal(done: Completed, variable: str) -> str:
    """The one line of a refused start; asserts its shape."""
    assert done.code == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert variable in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_DATABASE_URL", "not a url at all"),
        ("GATEWAY_DATABASE_URL", "mysql://gateway@db.internal/gateway"),
        ("GATEWAY_DATABASE_URL", "postgresql://gateway:hunter2@db:port/gateway"),
        ("GATEWAY_EGRESS_ALLOWED_NETWORKS", "10.0.0.0/8,10.1.2.3/33"),
        ("GATEWAY_EGRESS_ALLOWED_NETWORKS", "intranet.example.com"),
        ("GATEWAY_EGRESS_RESOLVE", "api.example.com:443"),
        ("GATEWAY_EGRESS_RESOLVE", "api.example.com:443:not-an-address"),
        ("GATEWAY_PUBLIC_URL", "not a url"),
        ("GATEWAY_PUBLIC_URL", "ftp://gateway.example.com"),
        ("GATEWAY_PUBLIC_URL", "https://gateway.example.com/?next=1"),
        ("GATEWAY_PORT", "eighty"),
        ("GATEWAY_HOST", "192.0.2.1"),  # an address this machine does not have
    ],
)
async def test_a_bad_setting_stops_serve(tmp_path: Path, variable: str, value: str) -> None:
    done = await gateway("serve", "--data-dir", str(tmp_path), env={variable: value})
    line = _refusal(done, variable)
    assert "hunter2" not in line  # a database URL's password is never repeated
    assert not (tmp_path / "gateway.db").exists()


async def test_good_values_of_the_same_settings_are_accepted() -> None:
    # `admin generate-key` loads the settings and touches nothing else.
    done = await gateway(
        "admin",
        "generate-key",
        env={
            "GATEWAY_DATABASE_URL": "postgresql://gateway@127.0.0.1:1/gateway?sslmode=require",
            "GATEWAY_EGRESS_ALLOWED_NETWORKS": "10.0.0.0/8, 127.0.0.1:8081, [::1]:9000",
            "GATEWAY_EGRESS_RESOLVE": "api.example.com:443:127.0.0.1",
            "GATEWAY_PUBLIC_URL": "https://gateway.example.com/base/",
        },
    )
    assert done.code == 0, done.stderr


@pytest.mark.parametrize("how", ["flag", "variable"])
async def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path: Path, how: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        if how == "flag":
            done = await gateway("serve", "--port", port, "--data-dir", str(tmp_path))
        else:
            done = await gateway("serve", "--data-dir", str(tmp_path), env={"GATEWAY_PORT": port})
    line = _refusal(done, "GATEWAY_PORT")
    assert "--port" in line
    assert "in use" in line
