"""Settings from `GATEWAY_*` environment variables (SPEC 9.1); the only environment reader."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Final

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError
from yarl import URL

from gateway.apps.origin import DEFAULT_TEMPLATE, InstanceOrigins
from gateway.crypto import KeyRing
from gateway.egress.policy import AddressPolicy, validate_url
from gateway.store.engine import async_url

ENV_PREFIX: Final = "GATEWAY_"

CommaList = Annotated[tuple[str, ...], NoDecode]
"""A setting written as `a,b,c` in the environment."""


class SettingsError(Exception):
    """A setting is invalid; the message names the environment variable."""


def _check_database_url(url: str) -> None:
    try:
        make_url(url)
    except (ArgumentError, ValueError):
        # SQLAlchemy's messages may repeat the URL, password included: say what is expected.
        raise ValueError(
            "not a database URL: use sqlite:///PATH or postgresql://USER@HOST/DATABASE"
        ) from None
    async_url(url)  # refuses other databases, naming the scheme


def _check_public_url(url: str) -> None:
    validate_url(url)  # an absolute http(s) URL with a valid host, as egress checks them
    if "?" in url or "#" in url:
        raise ValueError("the public URL takes no query or fragment (paths are appended)")


# Settings with a syntax of their own, each checked by the code that parses it when it is
# used (no second parser), so that a bad value stops the start with the variable's name
# instead of a traceback at first use. A new such setting adds one entry here.
_PARSED_BY: Final[Mapping[str, Callable[..., object]]] = {
    "database_url": _check_database_url,
    "public_url": _check_public_url,
    "apps_origin": InstanceOrigins,
    "egress_allowed_networks": lambda value: AddressPolicy(allowed_networks=value),
    "egress_resolve": lambda value: AddressPolicy(resolve=value),
    "egress_connect_to": lambda value: AddressPolicy(connect_to=value),
}


class Settings(BaseSettings):
    """Everything the gateway can be configured with; built once by the entry point."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    public_url: str | None = None
    database_url: str | None = None
    encryption_keys: CommaList = ()
    workers: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, le=512)
    worker_address_space_mb: int = Field(default=1024, ge=128)
    egress_allow_private: bool = False
    egress_allowed_networks: CommaList = ()
    egress_resolve: CommaList = ()
    egress_connect_to: CommaList = ()
    egress_ca_file: Path | None = None
    # None: `http://{instance}.apps.localhost:PORT`, on the gateway's own port.
    apps_origin: str | None = None
    # How long an app session lasts (decision 0018: a working day, never extended).
    app_session_hours: int = Field(default=8, ge=1, le=24 * 7)
    run_retention_days: int = Field(default=30, ge=1)
    # Datasets (SPEC 7; decision 0021): upload cap, how long replaced files stay readable
    # for queries that started on them, and the SQL sandbox's limits.
    dataset_max_upload_mb: int = Field(default=10240, ge=1)
    dataset_grace_s: float = Field(default=3600.0, ge=0)
    sql_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    sql_memory_mb: int = Field(default=512, ge=16)
    sql_threads: int = Field(default=2, ge=1, le=64)
    sql_concurrency: int = Field(default=4, ge=1, le=256)
    # Seconds between this process's looks at the cache generations (decision 0019): how
    # long another replica's write may go unseen here.
    cache_poll_s: float = Field(default=1.0, gt=0, le=60)
    # Group commit of run records: the longest a run waits for company, the batch size,
    # and how many unwritten runs may wait before runs wait for the store (backpressure).
    run_batch_interval_ms: float = Field(default=5.0, ge=0, le=1000)
    run_batch_max: int = Field(default=200, ge=1, le=10_000)
    run_batch_max_pending: int = Field(default=10_000, ge=1)
    # Jobs (SPEC 7; decision 0022): attempts, this process's concurrency, the per-customer
    # limit across replicas, the lease and its heartbeat, how often queue and schedules are
    # polled, and the first retry's backoff.
    job_max_attempts: int = Field(default=5, ge=1, le=100)
    job_concurrency: int = Field(default=4, ge=1, le=1024)
    job_customer_concurrency: int = Field(default=2, ge=1, le=1024)
    job_lease_s: float = Field(default=30.0, gt=0, le=3600)
    job_heartbeat_s: float = Field(default=5.0, gt=0, le=600)
    job_poll_s: float = Field(default=1.0, gt=0, le=600)
    job_backoff_s: float = Field(default=2.0, ge=0, le=3600)
    schedule_poll_s: float = Field(default=5.0, gt=0, le=600)

    @field_validator(
        "encryption_keys",
        "egress_allowed_networks",
        "egress_resolve",
        "egress_connect_to",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator(*_PARSED_BY)
    @classmethod
    def _parses(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and info.field_name is not None:
            _PARSED_BY[info.field_name](value)  # raises ValueError naming what is wrong
        return value

    @field_validator("apps_origin")
    @classmethod
    def _apart_from_the_gateway(cls, value: str | None, info: ValidationInfo) -> str | None:
        public_url = info.data.get("public_url")
        if value is not None and public_url:
            authority = URL(public_url).raw_authority
            if InstanceOrigins(value).instance_of(authority) is not None:
                raise ValueError(
                    f"GATEWAY_PUBLIC_URL ({authority}) would be an app instance's origin: "
                    "give the apps a domain of their own"
                )
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _valid_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value:
            KeyRing(value)  # raises KeyConfigError (a ValueError) naming the bad entry
        return value

    def public_base(self) -> str:
        """The gateway's own origin for browsers: `GATEWAY_PUBLIC_URL`, else where it listens."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def instance_origins(self) -> InstanceOrigins:
        """The app instances' origins (`GATEWAY_APPS_ORIGIN`, by default on this port)."""
        template = self.apps_origin or DEFAULT_TEMPLATE.replace("{port}", str(self.port))
        return InstanceOrigins(template)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides (command-line flags).

    Raises:
        SettingsError: a setting is invalid; the message names its variable.
    """
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ENV_PREFIX + "_".join(str(part) for part in error["loc"][:1]).upper()
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}")
        raise SettingsError("; ".join(problems)) from exc
