"""The dataset folder: streamed uploads, part files, pins of versions being read, and removal.

Layout (decision 0021): `<root>/<customer id>/<dataset id>/` holds the dataset's immutable
part files `part-<id>.duckdb` and, while an upload runs, its `upload-<id>.tmp` (the body as
received) and `part-<id>.duckdb.tmp` (the part being written, renamed when complete). A
version is a list of parts in the metadata store; nothing in the folder says which parts
are current, so a half-finished upload is never visible, whatever kills it.

Removal: a file goes when no version within the grace period lists it, no query of this
process has it pinned, and it is older than the grace period (another replica may have
written it and not yet committed its version). The grace period also covers queries that
other replicas started on a version just replaced.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import AsyncIterable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, Final

from gateway.store.ids import new_id
from writeback.datasets.errors import UploadInterrupted, UploadTooLarge

PART_SUFFIX: Final = ".duckdb"
TEMP_SUFFIX: Final = ".tmp"
# Bytes gathered from the body before one write to disk: the most an upload holds in memory.
WRITE_BUFFER_BYTES: Final = 1024 * 1024


def _write(file: BinaryIO, data: bytes) -> None:
    file.write(data)


class DatasetFiles:
    """The files of every dataset under one root (a folder shared by the replicas)."""

    def __init__(self, root: Path, grace_s: float) -> None:
        self.root = root
        self.grace_s = grace_s
        self._pins: Counter[Path] = Counter()
        self._lock = threading.Lock()

    def folder(self, customer_id: str, dataset_id: str) -> Path:
        """The folder of one dataset (ids are UUIDs: no path syntax in them)."""
        return self.root / customer_id / dataset_id

    def new_part(self, folder: Path) -> tuple[Path, Path]:
        """A new part's final path and the temporary path it is written at."""
        final = folder / f"part-{new_id()}{PART_SUFFIX}"
        return final, final.with_name(final.name + TEMP_SUFFIX)

    async def receive(
        self, folder: Path, body: AsyncIterable[bytes], max_bytes: int, declared: int | None
    ) -> Path:
        """Stream `body` to a new temporary file in `folder`, never holding more than a buffer.

        The file is removed when anything goes wrong (including the caller's cancellation).

        Raises:
            UploadTooLarge: past `max_bytes` (also when `declared` says so up front).
            UploadInterrupted: fewer bytes than `declared` arrived.
        """
        if declared is not None and declared > max_bytes:
            raise UploadTooLarge(f"the file is larger than the {max_bytes} bytes allowed")
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        path = folder / f"upload-{new_id()}{TEMP_SUFFIX}"
        file = await asyncio.to_thread(path.open, "wb")
        try:
            received = 0
            buffer = bytearray()
            async for chunk in body:
                received += len(chunk)
                if received > max_bytes:
                    raise UploadTooLarge(f"the file is larger than the {max_bytes} bytes allowed")
                buffer += chunk
                if len(buffer) >= WRITE_BUFFER_BYTES:
                    await asyncio.to_thread(_write, file, bytes(buffer))
                    buffer.clear()
            await asyncio.to_thread(_write, file, bytes(buffer))
            if declared is not None and received < declared:
                raise UploadInterrupted(f"the body ended after {received} of its {declared} bytes")
            await asyncio.to_thread(file.close)
        except BaseException:
            file.close()
            path.unlink(missing_ok=True)
            raise
        return path

    @contextmanager
    def pinned(self, paths: Iterable[Path]) -> Iterator[None]:
        """Keep `paths` from removal by this process while the block runs."""
        held = list(paths)
        with self._lock:
            self._pins.update(held)
        try:
            yield
        finally:
            with self._lock:
                self._pins.subtract(held)
                self._pins += Counter()  # drop the counts that reached zero

    def is_pinned(self, path: Path) -> bool:
        """Whether a query of this process reads `path` now."""
        with self._lock:
            return self._pins[path] > 0

    def sweep(self, folder: Path, live: set[str], *, now: float | None = None) -> list[str]:
        """Remove the folder's files that no live version lists (blocking; see the module).

        Returns:
            The names removed.
        """
        cutoff = (time.time() if now is None else now) - self.grace_s
        removed = []
        with suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                path = Path(entry.path)
                if entry.name in live or self.is_pinned(path):
                    continue
                with suppress(FileNotFoundError):
                    if entry.stat().st_mtime >= cutoff:
                        continue
                    if entry.is_dir():
                        shutil.rmtree(path, ignore_errors=True)  # a load's spill folder
                    else:
                        path.unlink()
                    removed.append(entry.name)
        return removed

    def folders(self) -> list[tuple[str, str]]:
        """Every `(customer id, dataset id)` that has a folder (blocking)."""
        found: list[tuple[str, str]] = []
        with suppress(FileNotFoundError):
            for customer in os.scandir(self.root):
                if customer.is_dir():
                    found.extend(
                        (customer.name, dataset.name)
                        for dataset in os.scandir(customer.path)
                        if dataset.is_dir()
                    )
        return found

    def remove_folder_if_empty(self, folder: Path) -> None:
        """Remove a dataset's folder once it holds nothing (blocking)."""
        with suppress(OSError):
            folder.rmdir()
