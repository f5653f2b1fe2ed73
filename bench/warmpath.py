"""The warm path's metadata reads, cold (the store) against warm (the caches), on SQLite.

`python -m bench.warmpath [--iterations N]` times `authenticate`, `runnable`,
`mapped_account`, `fields_for_run` and storing a run, first with services whose generations
never polled (every call reads the store, as before decision 0019), then with polled
generations and warm caches; a run is stored one transaction each, then by the group-commit
writer. It prints microseconds per call (median and p99) and the speed-up.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.accounts.service import AccountService, Provider
from gateway.accounts.vault import SecretVault
from gateway.apps.manifest import AppManifest
from gateway.apps.service import AppService
from gateway.connectors.models import ConnectorCreate, ScriptKind
from gateway.connectors.runs import RunService, StoredRun, run_writer
from gateway.connectors.service import ConnectorService
from gateway.crypto import KeyRing, new_key_entry
from gateway.identity.principal import Principal, Role
from gateway.identity.service import IdentityService
from gateway.store import create_engine, new_id, upgrade, utcnow
from gateway.store.generations import Generations
from runtime.model import RunMode, RunResult, RunStatus

CRM = Provider("crm", "apikey")
Call = Callable[[], Awaitable[object]]


@dataclass
class Services:
    identity: IdentityService
    accounts: AccountService
    apps: AppService
    connectors: ConnectorService


async def _accept(values: dict[str, str]) -> tuple[bool, str | None]:
    return True, None


def _services(engine: object, generations: Generations, vault: SecretVault) -> Services:
    accounts = AccountService(engine, vault, generations)  # type: ignore[arg-type]
    return Services(
        IdentityService(engine, generations),  # type: ignore[arg-type]
        accounts,
        AppService(engine, accounts, generations=generations),  # type: ignore[arg-type]
        ConnectorService(engine, generations=generations),  # type: ignore[arg-type]
    )


async def _time(call: Call, iterations: int) -> list[float]:
    await call()  # warm-up (fills the caches on the warm side)
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def _run(principal: Principal) -> StoredRun:
    return StoredRun(
        id=new_id(),
        customer_id=principal.customer_id,
        user_id=principal.user_id,
        connector_id="connector",
        connector_guid="guid",
        kind="dev",
        mode=RunMode.PROCESS,
        result=RunResult(status=RunStatus.SUCCESS, logs=["ok"], duration_ms=1.0),
        account_resolution={"source": "none"},
        created_at=utcnow(),
    )


def _row(name: str, cold: list[float], warm: list[float]) -> str:
    cold_p50, warm_p50 = statistics.median(cold), statistics.median(warm)
    cold_p99 = statistics.quantiles(cold, n=100)[98]
    warm_p99 = statistics.quantiles(warm, n=100)[98]
    return (
        f"{name:<16} {cold_p50:>9.1f} {cold_p99:>9.1f} {warm_p50:>9.1f} {warm_p99:>9.1f}"
        f" {cold_p50 / warm_p50:>8.1f}x"
    )


async def measure(iterations: int) -> None:
    """Set up one customer's user, connector, account and app instance; time both sides."""
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        await upgrade(engine)
        vault = SecretVault(KeyRing([new_key_entry()]))
        cold_generations = Generations(engine)
        warm_generations = Generations(engine, poll_s=3600)
        cold = _services(engine, cold_generations, vault)
        warm = _services(engine, warm_generations, vault)
        customer = await cold.identity.create_customer("acme")
        user = await cold.identity.create_user(customer.id, "o@acme.test", "O", Role.MEMBER)
        _, token = await cold.identity.issue_token(user, "bench")
        owner = Principal(user.id, customer.id, Role.MEMBER)
        definition = ConnectorCreate.model_validate(
            {"kind": "action", "name": "CRM", "key": "crm", "auth": {"method": "apikey"}},
            strict=False,
        )
        connector = await cold.connectors.create_connector(owner, definition)
        await cold.connectors.put_script(owner, connector.guid, ScriptKind.PROCESS, "", "1;")
        account = await cold.accounts.create(owner, CRM, "main", {"apikey": "k"}, _accept)
        manifest = AppManifest.model_validate(
            {
                "name": "A",
                "version": "1",
                "accountMapping": [{"alias": "s", "dataProviderKey": "crm"}],
            }
        )
        app = await cold.apps.create(owner, manifest, {})
        instance = await cold.apps.create_instance(owner, app.id, None)
        await cold.apps.map_account(owner, app.id, instance.id, "s", account.id)
        await warm_generations.start()

        def calls(side: Services) -> dict[str, Call]:
            return {
                "authenticate": lambda: side.identity.authenticate(token),
                "runnable": lambda: side.connectors.versions.runnable(
                    owner, connector.guid, ScriptKind.PROCESS
                ),
                "mapped_account": lambda: side.apps.mapped_account(owner, instance.id, "s"),
                "fields_for_run": lambda: side.accounts.fields_for_run(owner, CRM, account.id),
            }

        print(f"SQLite, {iterations} calls each, microseconds per call")
        print(
            f"{'':<16} {'cold p50':>9} {'cold p99':>9} {'warm p50':>9} {'warm p99':>9}"
            f" {'speed-up':>9}"
        )
        for name, call in calls(cold).items():
            print(
                _row(
                    name, await _time(call, iterations), await _time(calls(warm)[name], iterations)
                )
            )

        direct = RunService(engine, cold.connectors, None, None)  # type: ignore[arg-type]
        writer = run_writer(engine)
        batched = RunService(engine, cold.connectors, None, None, writer=writer)  # type: ignore[arg-type]
        writer.start()
        one_by_one = await _time(lambda: direct._store(_run(owner)), iterations)
        started = time.perf_counter()
        await asyncio.gather(*(batched._store(_run(owner)) for _ in range(iterations)))
        await batched.flush_runs()
        per_run = (time.perf_counter() - started) * 1e6 / iterations
        print(
            f"{'store a run':<16} {statistics.median(one_by_one):>9.1f} "
            f"{statistics.quantiles(one_by_one, n=100)[98]:>9.1f} {per_run:>9.1f} {'':>9}"
            f" {statistics.median(one_by_one) / per_run:>8.1f}x  (warm: group commit, amortised)"
        )
        await writer.close()
        await warm_generations.close()
        await engine.dispose()


def main() -> None:
    """Parse the arguments and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=2000)
    asyncio.run(measure(parser.parse_args().iterations))


if __name__ == "__main__":
    main()
