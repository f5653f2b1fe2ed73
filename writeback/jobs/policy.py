"""When a failed attempt is tried again, and after how long (decision 0022)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Final

from runtime.model import ErrorCode, RunResult, RunStatus

# Upstream answers that say "later" rather than "no".
TRANSIENT_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S: Final = 3600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits `base_s * 2**(n-1)`, at most
    `cap_s`, times a random factor in [0.5, 1] (so replicas retrying together spread out).
    An upstream `Retry-After` replaces the backoff (at most an hour)."""

    base_s: float = 2.0
    cap_s: float = 300.0
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.5, 1.0))  # noqa: S311

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before the attempt after `attempt`."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER_S)
        backoff: float = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        return backoff * self.jitter()


def is_transient(result: RunResult) -> bool:
    """Whether a run that did not succeed may succeed when tried again.

    Time-outs and crashed workers are; so is any failure right after the upstream answered
    429 or 5xx, or after a request that could not be sent (connection refused or reset,
    time-out) — whatever the script did with it. Script errors of its own are not.
    """
    if result.status is RunStatus.SUCCESS:
        return False
    if result.status is RunStatus.TIMEOUT:
        return True
    if result.error is not None and result.error.code == ErrorCode.WORKER_CRASHED:
        return True
    if result.error is not None and result.error.code == ErrorCode.EGRESS_REFUSED:
        return False
    if not result.http:
        return False
    last = result.http[-1]
    return last.status in TRANSIENT_STATUSES or (last.status is None and last.error is not None)


def parse_retry_after(value: str, now: datetime) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)
