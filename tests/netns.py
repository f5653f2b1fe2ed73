"""Run a command inside a fresh, loopback-only network namespace.

A test that must prove a packet to a private address is never sent runs that part here
(THREATS E1, E4): even if the guard under test were broken, the namespace has no route
off the machine. It needs `unshare` and `ip` (util-linux, iproute2) and either root or
unprivileged user namespaces.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
# `$0` is a placeholder name; the command follows as "$@".
_BRING_UP_LO: Final = 'ip link set lo up && exec "$@"'


def _unshare() -> list[str]:
    if os.geteuid() == 0:
        return ["unshare", "--net"]
    return ["unshare", "--map-root-user", "--net"]


@functools.cache
def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = run_in_netns(["true"], timeout=10, check_available=False)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip()[:200]}"
    return None


def run_in_netns(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    timeout: float = 60,
    cwd: Path = REPO_ROOT,
    check_available: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a new network namespace whose only interface is `lo` (up).

    Raises:
        RuntimeError: namespaces are unavailable (tests should skip first).
        subprocess.TimeoutExpired: the command ran longer than `timeout` seconds.
    """
    if check_available and (reason := unavailable_reason()) is not None:
        raise RuntimeError(reason)
    command = [*_unshare(), "--", "sh", "-c", _BRING_UP_LO, "netns", *argv]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )


def run_python_module_in_netns(
    module: str, *, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m module` from the repository root inside a namespace."""
    return run_in_netns([sys.executable, "-m", module], stdin=stdin, timeout=timeout)


def only_loopback() -> bool:
    """Whether this process sees no network interface but `lo` (true inside the namespace)."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]
