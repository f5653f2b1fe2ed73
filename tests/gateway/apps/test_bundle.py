"""App zips read as uploads from a stranger (THREATS I6): the hostile corpus is refused."""

from __future__ import annotations

import os
import zipfile

import pytest

from gateway.apps.bundle import BundleLimits, read_bundle
from gateway.apps.errors import BundleRefused, BundleTooLarge
from tests.gateway.apps.zips import lying_size, make_zip, with_duplicate

# Small caps, so that each limit is reached by a small archive.
LIMITS = BundleLimits(
    max_files=5,
    max_file_bytes=64 * 1024,
    max_total_bytes=160 * 1024,
    max_ratio=20,
    ratio_floor=16 * 1024,
)


def test_a_plain_tree_is_read_with_its_folders() -> None:
    data = make_zip(
        {"index.html": b"<h1>hi</h1>", "js/": b"", "js/app.js": b"1;", "img/a b.png": b"\x89"}
    )
    bundle = read_bundle(data, LIMITS)
    assert bundle.manifest.startswith(b"{")
    assert bundle.files == {
        "index.html": b"<h1>hi</h1>",
        "js/app.js": b"1;",
        "img/a b.png": b"\x89",
    }
    assert bundle.size == 11 + 2 + 1


@pytest.mark.parametrize(
    "name",
    [
        "../evil.js",
        "js/../../evil.js",
        "js/./app.js",
        "js//app.js",
        "/etc/passwd",
        "C:/windows/evil.js",
        "..\\evil.js",
        "js\\app.js",
        "bad\x01name",
    ],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(BundleRefused, match=r"name|absolute"):
        read_bundle(make_zip({name: b"x"}), LIMITS)


def test_a_symlink_is_refused() -> None:
    with pytest.raises(BundleRefused, match="links and special files"):
        read_bundle(make_zip({}, links={"passwd": "/etc/passwd"}), LIMITS)


def test_a_duplicate_name_is_refused() -> None:
    with pytest.raises(BundleRefused, match="used twice"):
        read_bundle(with_duplicate("index.html"), LIMITS)


def test_a_name_that_is_a_file_and_a_folder_is_refused() -> None:
    with pytest.raises(BundleRefused, match="both a file and a folder"):
        read_bundle(make_zip({"js": b"x", "js/app.js": b"y"}), LIMITS)


def test_a_bomb_by_ratio_is_refused() -> None:
    # 60 KiB of zeros deflate to about 100 bytes: under the size caps, far past the ratio.
    with pytest.raises(BundleTooLarge, match="inflates more than 20 times"):
        read_bundle(make_zip({"zeros.bin": bytes(60 * 1024)}), LIMITS)


def test_a_file_past_the_per_file_cap_is_refused() -> None:
    data = make_zip({"big.bin": os.urandom(65 * 1024)}, compression=zipfile.ZIP_STORED)
    with pytest.raises(BundleTooLarge, match=r"'big\.bin' inflates to more than 65536 bytes"):
        read_bundle(data, LIMITS)


def test_a_bomb_by_total_size_is_refused() -> None:
    files = {f"part{i}.bin": os.urandom(60 * 1024) for i in range(3)}
    with pytest.raises(BundleTooLarge, match="more than 163840 bytes"):
        read_bundle(make_zip(files, compression=zipfile.ZIP_STORED), LIMITS)


def test_too_many_files_are_refused() -> None:
    files = {f"f{i}.txt": b"x" for i in range(6)}
    with pytest.raises(BundleTooLarge, match="more than 5 files"):
        read_bundle(make_zip(files), LIMITS)


def test_a_header_that_understates_the_size_gains_nothing() -> None:
    # The headers claim 10 bytes; the data inflates to 200 KiB of incompressible bytes.
    data = lying_size("big.bin", os.urandom(200 * 1024), claimed=10)
    with pytest.raises(BundleRefused, match="damaged"):
        read_bundle(data, LIMITS)


def test_a_header_that_overstates_the_size_is_not_believed() -> None:
    # The claim (1 GB) is past every cap; what counts is what inflates.
    data = lying_size("index.html", b"<h1>hello</h1>", claimed=10**9)
    assert read_bundle(data, LIMITS).files == {"index.html": b"<h1>hello</h1>"}


def test_a_header_that_understates_a_small_file_is_refused_as_damaged() -> None:
    data = lying_size("index.html", b"<h1>" + b"x" * 100 + b"</h1>", claimed=10)
    with pytest.raises(BundleRefused, match="damaged"):
        read_bundle(data, LIMITS)


def test_no_manifest_at_the_root_is_refused() -> None:
    with pytest.raises(BundleRefused, match=r"no manifest\.json"):
        read_bundle(make_zip({"app/manifest.json": b"{}"}, manifest=None), LIMITS)


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04" + bytes(100)])
def test_what_is_not_a_zip_is_refused(data: bytes) -> None:
    with pytest.raises(BundleRefused, match="not a zip"):
        read_bundle(data, LIMITS)


def test_an_encrypted_entry_is_refused() -> None:
    data = bytearray(make_zip({"index.html": b"x"}))
    # Set the "encrypted" flag of the entry in the central directory (offset 8 there).
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        data[central + 8] |= 0x1
        central = data.find(b"PK\x01\x02", central + 4)
    with pytest.raises(BundleRefused, match="encrypted"):
        read_bundle(bytes(data), LIMITS)
