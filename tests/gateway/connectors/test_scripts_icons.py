"""Uploading and downloading a connector's scripts and icons."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import AsyncIterator
from http import HTTPStatus

import pytest

from gateway.connectors.icons import InvalidPng, inspect_png
from tests.gateway.callers import Caller, Client, problem
from tests.gateway.connectors.conftest import (
    create_connector,
    make_png,
    put_script,
)

JS = {"Content-Type": "application/javascript"}
DISCOVERY_PARAMETER = {"name": "Region", "type": "discovery"}


async def test_scripts_round_trip(client: Client, owner: Caller) -> None:
    created = await create_connector(client, owner, parameters=[DISCOVERY_PARAMETER])
    base = f"/api/v1/connectors/{created['guid']}/scripts"
    source = "// café\nDOMO.log('héllo');\n"
    info = await put_script(client, owner, created["guid"], "process", source)
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert (info["kind"], info["param"], info["sha256"], info["size"]) == (
        "process",
        None,
        digest,
        len(source.encode()),
    )
    got = await client.get(base + "/process", headers=owner.headers)
    assert got.status == HTTPStatus.OK
    assert got.content_type == "application/javascript"
    assert got.headers["ETag"] == f'"{digest}"'
    assert await got.text() == source
    # Replacing keeps one script; other accepted types work too.
    for content_type in ("text/javascript", "text/plain; charset=utf-8"):
        replaced = await client.put(
            base + "/process",
            headers={**owner.headers, "Content-Type": content_type},
            data=b"DOMO.log(2);",
        )
        assert replaced.status == HTTPStatus.OK
    assert await (await client.get(base + "/process", headers=owner.headers)).text() == (
        "DOMO.log(2);"
    )
    await put_script(
        client, owner, created["guid"], "discovery/Region", "discovery.addOption('eu');"
    )
    got = await client.get(base + "/discovery/Region", headers=owner.headers)
    assert await got.text() == "discovery.addOption('eu');"
    connector = await (
        await client.get(f"/api/v1/connectors/{created['guid']}", headers=owner.headers)
    ).json()
    assert [(s["kind"], s["param"]) for s in connector["scripts"]] == [
        ("discovery", "Region"),
        ("process", None),
    ]


async def test_script_refusals(client: Client, owner: Caller) -> None:
    created = await create_connector(client, owner, parameters=[{"name": "p", "type": "string"}])
    base = f"/api/v1/connectors/{created['guid']}/scripts"
    headers = {**owner.headers, **JS}
    await problem(
        await client.get(base + "/auth", headers=owner.headers), HTTPStatus.NOT_FOUND, "not_found"
    )
    await problem(
        await client.put(base + "/setup", headers=headers, data=b"x"),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )
    for content_type in ("image/png", "application/json", "text/plain; charset=latin-1"):
        await problem(
            await client.put(
                base + "/auth", headers={**owner.headers, "Content-Type": content_type}, data=b"x"
            ),
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
    await problem(
        await client.put(
            base + "/auth", headers=headers, data=io.BytesIO(b"x" * (1024 * 1024 + 1))
        ),
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "payload_too_large",
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted after reading
        for _ in range(3):
            yield b"/" * (512 * 1024)

    await problem(
        await client.put(base + "/auth", headers=headers, data=chunks()),
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "payload_too_large",
    )
    body = await problem(
        await client.put(base + "/auth", headers=headers, data=b"DOMO.log('\xff');"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    assert body["errors"][0]["loc"] == ["body"]
    # PostgreSQL text cannot hold NUL (found by the fuzz): refused on every backend.
    body = await problem(
        await client.put(base + "/auth", headers=headers, data=b"a\x00b"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    assert body["detail"] == "the script holds a NUL character"
    await problem(
        await client.get(base + "/auth", headers=owner.headers), HTTPStatus.NOT_FOUND, "not_found"
    )
    await problem(
        await client.put(base + "/auth", headers=headers, data=b"  \n"),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    # Discovery scripts serve declared discovery parameters only.
    for param in ("p", "nope"):
        body = await problem(
            await client.put(base + f"/discovery/{param}", headers=headers, data=b"x"),
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        assert f"no discovery parameter named {param!r}" in body["detail"]


@pytest.mark.parametrize(("slot", "size"), [("icon", (512, 512)), ("banner", (1024, 512))])
async def test_icons_round_trip(
    client: Client, owner: Caller, slot: str, size: tuple[int, int]
) -> None:
    created = await create_connector(client, owner)
    path = f"/api/v1/connectors/{created['guid']}/icons/{slot}"
    png = make_png(*size)
    response = await client.put(
        path, headers={**owner.headers, "Content-Type": "image/png"}, data=png
    )
    assert response.status == HTTPStatus.OK, await response.text()
    info = await response.json()
    assert (info["slot"], info["width"], info["height"]) == (slot, *size)
    got = await client.get(path, headers=owner.headers)
    assert got.status == HTTPStatus.OK
    assert got.content_type == "image/png"
    assert await got.read() == png
    connector = await (
        await client.get(f"/api/v1/connectors/{created['guid']}", headers=owner.headers)
    ).json()
    assert [i["slot"] for i in connector["icons"]] == [slot]


def _corrupt_crc(png: bytes) -> bytes:
    # The IHDR chunk's CRC sits at bytes 29..33.
    return png[:29] + bytes([png[29] ^ 0xFF]) + png[30:]


@pytest.mark.parametrize(
    ("slot", "data", "detail"),
    [
        ("logo", make_png(256, 256), "the logo must be 512x512 pixels; this PNG is 256x256"),
        ("banner", make_png(512, 512), "the banner must be 1024x512 pixels; this PNG is 512x512"),
        ("icon_plain", b"GIF89a" + b"\x00" * 100, "not a PNG image"),
        ("icon", make_png(512, 512)[:-20], "truncated"),
        ("icon", make_png(512, 512)[:60], "truncated"),
        ("icon", _corrupt_crc(make_png(512, 512)), "bad CRC in its IHDR chunk"),
        ("icon", make_png(512, 512) + b"junk", "data after its IEND"),
    ],
)
async def test_bad_icons_are_clear_422s(
    client: Client, owner: Caller, slot: str, data: bytes, detail: str
) -> None:
    created = await create_connector(client, owner)
    response = await client.put(
        f"/api/v1/connectors/{created['guid']}/icons/{slot}",
        headers={**owner.headers, "Content-Type": "image/png"},
        data=data,
    )
    body = await problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed")
    assert detail in body["detail"]
    assert body["errors"][0]["loc"] == ["body"]


async def test_icon_refusals(client: Client, owner: Caller) -> None:
    created = await create_connector(client, owner)
    base = f"/api/v1/connectors/{created['guid']}/icons"
    png = {**owner.headers, "Content-Type": "image/png"}
    await problem(
        await client.put(
            base + "/icon", headers={**owner.headers, "Content-Type": "image/jpeg"}, data=b"x"
        ),
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    await problem(
        await client.put(
            base + "/icon", headers=png, data=io.BytesIO(b"\x89PNG" + b"\x00" * (2 * 1024 * 1024))
        ),
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "payload_too_large",
    )
    await problem(
        await client.put(base + "/favicon", headers=png, data=make_png(512, 512)),
        HTTPStatus.NOT_FOUND,
        "not_found",
    )
    await problem(
        await client.get(base + "/logo", headers=owner.headers), HTTPStatus.NOT_FOUND, "not_found"
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_png_structure_checks() -> None:
    good = make_png(3, 2)
    info = inspect_png(good)
    assert (info.width, info.height, info.bit_depth, info.color_type) == (3, 2, 8, 2)
    signature, ihdr = good[:8], good[8:33]
    idat_and_end = good[33:]
    no_idat = signature + ihdr + _chunk(b"IEND", b"")
    bad_depth = signature + _chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 3, 2, 0, 0, 0))
    zero_width = signature + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 2, 8, 2, 0, 0, 0))
    two_headers = signature + ihdr + ihdr + idat_and_end
    for data, message in [
        (no_idat, "no IDAT"),
        (bad_depth + idat_and_end, "bit depth"),
        (zero_width + idat_and_end, "width and height"),
        (two_headers, "more than one IHDR"),
        (signature + idat_and_end, "does not start with a valid IHDR"),
        (signature, "truncated"),
        (b"", "not a PNG"),
    ]:
        with pytest.raises(InvalidPng, match=message):
            inspect_png(data)
