"""The worker's OS confinement (THREATS R8): no sockets, no exec, no fork, bounded memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import os, socket, sys, threading
    from runtime.sandbox import deny_network_and_processes, limit_resources
    limit_resources(512 * 1024 * 1024)
    deny_network_and_processes()
    outcomes = []
    def attempt(name, action):
        try:
            action()
            outcomes.append(name + ":allowed")
        except (OSError, MemoryError) as exc:
            outcomes.append(name + ":" + type(exc).__name__)
    attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    attempt("unix", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    attempt("exec", lambda: os.execv("/bin/true", ["true"]))
    attempt("fork", lambda: os.fork())
    attempt("memory", lambda: bytearray(1024 * 1024 * 1024))
    def write():
        with open("/tmp/gw-sandbox-probe", "w") as handle:
            handle.write("x" * 10)
            handle.flush()
    attempt("write", write)
    t = threading.Thread(target=lambda: None); t.start(); t.join()
    outcomes.append("thread:ok")
    print(" ".join(outcomes))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux only")
def test_r8_worker_cannot_open_sockets_exec_or_fork() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    outcomes = dict(item.split(":") for item in done.stdout.split())
    assert outcomes == {
        "socket": "PermissionError",
        "unix": "PermissionError",
        "exec": "PermissionError",
        "fork": "PermissionError",
        "memory": "MemoryError",
        "write": "OSError",
        "thread": "ok",
    }
