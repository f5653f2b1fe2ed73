"""The one log line per request (STYLE 7): what a handler's work adds to the access line.

`request_context` opens a line for the request's task and writes it as `request_finished`;
work done for the request (a run) adds its fields there instead of writing a line of its own.
Work in any other task (a background job started by a request inherits the request's
context, so the task is compared, not just the variable) writes its own line.
"""

from __future__ import annotations

import asyncio
import weakref
from contextvars import ContextVar, Token
from typing import Any


class AccessLine:
    """The fields the request's task added to its access line.

    The task is held weakly: every callback and task scheduled during the request copies
    the context, and with it this line, which must not keep the task (and what it returned)
    alive after the request.
    """

    __slots__ = ("_task", "fields")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self._task = None if task is None else weakref.ref(task)
        self.fields: dict[str, Any] = {}

    def serves(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether `task` is the request's own."""
        return task is not None and self._task is not None and self._task() is task


_CURRENT: ContextVar[AccessLine | None] = ContextVar("access_line", default=None)


def open_line() -> tuple[AccessLine, Token[AccessLine | None]]:
    """Open the access line of the request running in the current task."""
    line = AccessLine(asyncio.current_task())
    return line, _CURRENT.set(line)


def close_line(token: Token[AccessLine | None]) -> None:
    """Close the line `open_line` opened (its fields were written)."""
    _CURRENT.reset(token)


def add_to_line(**fields: Any) -> bool:
    """Add `fields` to the current request's access line; False when this task serves no
    request (the caller then logs a line of its own)."""
    line = _CURRENT.get()
    if line is None or not line.serves(asyncio.current_task()):
        return False
    line.fields.update(fields)
    return True
