"""Reading an app zip as an upload from a stranger: checked names, inflated bytes counted.

Nothing here touches the file system: the files come back as bytes under checked relative
paths, and the caller stores them (THREATS I6). The caps apply to the bytes actually
inflated, never to the sizes the archive claims, so a lying header gains nothing.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Final

from gateway.apps.errors import BundleRefused, BundleTooLarge

MANIFEST: Final = "manifest.json"
CHUNK: Final = 64 * 1024
# A name segment: no control characters, no backslash (a separator elsewhere), no colon
# (drive letters, NTFS streams).
_SEGMENT: Final = re.compile(r"^[^\x00-\x1f\x7f\\:]+$")
_METHODS: Final = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


@dataclass(frozen=True, slots=True)
class BundleLimits:
    """Caps on one app zip; a ratio applies once an entry or the whole passes `ratio_floor`."""

    max_files: int = 1000
    max_file_bytes: int = 16 * 1024 * 1024
    max_total_bytes: int = 64 * 1024 * 1024
    max_ratio: int = 100
    ratio_floor: int = 1024 * 1024
    max_path_length: int = 512


@dataclass(frozen=True, slots=True)
class Bundle:
    """The manifest's bytes and the app's other files by relative path."""

    manifest: bytes
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Bytes of the app's files (the manifest not counted)."""
        return sum(len(content) for content in self.files.values())


def read_bundle(data: bytes, limits: BundleLimits) -> Bundle:
    """Check and inflate an app zip held in memory (CPU work: call it off the loop).

    Raises:
        BundleRefused: not a zip, a name that is absolute, has `..` or another unsafe
            segment, a duplicate, a link or other special entry, an encrypted entry, an
            unknown compression method, a bad checksum, or no `manifest.json` at the root.
        BundleTooLarge: too many files, a file or the whole too large once inflated, or
            a compression ratio past the cap.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise BundleRefused("the body is not a zip archive") from None
    with archive:
        entries = _checked_entries(archive.infolist(), limits)
        files: dict[str, bytes] = {}
        total = 0
        for path, info in entries:
            content = _inflate(archive, info, path, limits, limits.max_total_bytes - total)
            total += len(content)
            if total > limits.ratio_floor and total > limits.max_ratio * max(len(data), 1):
                raise BundleTooLarge(f"the archive inflates more than {limits.max_ratio} times")
            files[path] = content
    manifest = files.pop(MANIFEST, None)
    if manifest is None:
        raise BundleRefused(f"the archive has no {MANIFEST} at its root")
    return Bundle(manifest, files)


def _checked_entries(
    infos: list[zipfile.ZipInfo], limits: BundleLimits
) -> list[tuple[str, zipfile.ZipInfo]]:
    """The regular files of the archive under checked names; directories are left out."""
    entries: list[tuple[str, zipfile.ZipInfo]] = []
    seen: set[str] = set()
    for info in infos:
        name = info.orig_filename
        _check_kind(info, name)
        if name.endswith("/"):
            _checked_path(name[:-1], limits)
            continue
        path = _checked_path(name, limits)
        if path in seen:
            raise BundleRefused(f"{name!r}: the name is used twice")
        seen.add(path)
        entries.append((path, info))
        if len(entries) > limits.max_files:
            raise BundleTooLarge(f"the archive holds more than {limits.max_files} files")
    folders = {path.rsplit("/", 1)[0] for path in seen if "/" in path}
    for path in seen:
        if path in folders or any(folder.startswith(path + "/") for folder in folders):
            raise BundleRefused(f"{path!r}: the name is both a file and a folder")
    return entries


def _check_kind(info: zipfile.ZipInfo, name: str) -> None:
    """Only plain files and directories: no links, devices, pipes, or encrypted entries."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR) or (
        kind == stat.S_IFDIR and not name.endswith("/")
    ):
        raise BundleRefused(f"{name!r}: links and special files are refused")
    if info.flag_bits & 0x1:
        raise BundleRefused(f"{name!r}: encrypted entries are refused")
    if info.compress_type not in _METHODS:
        raise BundleRefused(f"{name!r}: only stored and deflated entries are accepted")


def _checked_path(name: str, limits: BundleLimits) -> str:
    """A relative POSIX path with plain segments, or a refusal naming the entry."""
    if not name or len(name) > limits.max_path_length:
        raise BundleRefused(f"{name[:100]!r}: the name is empty or too long")
    if name.startswith("/"):
        raise BundleRefused(f"{name!r}: absolute names are refused")
    segments = name.split("/")
    for segment in segments:
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise BundleRefused(f"{name!r}: the name has an empty, '.', '..' or unsafe segment")
    return name


def _inflate(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, limits: BundleLimits, room: int
) -> bytes:
    """The entry's bytes, counted as they are inflated, within the per-file and total caps."""
    cap = min(limits.max_file_bytes, room)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > cap:
                    raise BundleTooLarge(_too_large(path, limits, room))
                if size > limits.ratio_floor and size > limits.max_ratio * max(
                    info.compress_size, 1
                ):
                    raise BundleTooLarge(
                        f"{path!r} inflates more than {limits.max_ratio} times its size"
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
        raise BundleRefused(f"{path!r}: the entry is damaged (bad data or checksum)") from None
    return b"".join(chunks)


def _too_large(path: str, limits: BundleLimits, room: int) -> str:
    if room < limits.max_file_bytes:
        return f"the archive inflates to more than {limits.max_total_bytes} bytes"
    return f"{path!r} inflates to more than {limits.max_file_bytes} bytes"
