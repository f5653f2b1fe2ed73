"""Typed keys for everything the application shares (no string keys, no globals)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.egress import EgressClient
from gateway.settings import Settings
from runtime.pool import WorkerPool

SETTINGS: Final = web.AppKey("settings", Settings)
POOL: Final = web.AppKey("pool", WorkerPool)
EGRESS: Final = web.AppKey("egress", EgressClient)
