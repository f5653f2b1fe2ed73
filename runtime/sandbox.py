"""OS-level confinement a worker applies to itself before it runs any script."""

from __future__ import annotations

import errno
import resource
import sys
from typing import Final

# Process creation and network access are never needed by a worker: its only channel is the
# pipe to the gateway. Denying them turns a QuickJS memory-safety bug into a dead end.
_DENIED_SYSCALLS: Final = (
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "execve",
    "execveat",
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
)
_CLONE_THREAD: Final = 0x00010000


class SandboxError(RuntimeError):
    """The worker could not confine itself; it must not run scripts."""


def limit_resources(address_space_bytes: int) -> None:
    """Cap the worker's address space, forbid core dumps and file writes."""
    resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def deny_network_and_processes() -> None:
    """Install a seccomp filter: no sockets, no exec, no fork (threads stay allowed).

    Raises:
        SandboxError: seccomp is unavailable on this Linux system.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:
        raise SandboxError(f"seccomp is unavailable: {exc}") from exc
    try:
        denied = seccomp.ERRNO(errno.EPERM)
        rules = seccomp.SyscallFilter(seccomp.ALLOW)
        for name in _DENIED_SYSCALLS:
            rules.add_rule(denied, name)
        # clone() without CLONE_THREAD makes a process; with it, a thread.
        rules.add_rule(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_THREAD, 0))
        # clone3 passes its flags in memory the filter cannot read: make libc fall back to clone.
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        rules.load()
    except (OSError, RuntimeError, ValueError) as exc:
        raise SandboxError(f"cannot install the seccomp filter: {exc}") from exc
