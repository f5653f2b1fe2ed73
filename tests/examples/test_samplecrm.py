"""The Sample CRM example: files the gateway accepts, an API answering what the scripts expect."""

from __future__ import annotations

import base64
import stat
from http import HTTPStatus
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from examples.samplecrm.api import CSV_ROWS, PASSWORD, USERNAME, add_routes
from examples.tls import make_local_ca
from gateway.apps.manifest import AppManifest
from gateway.connectors.icons import inspect_png
from gateway.connectors.models import ICON_SIZES, ConnectorCreate, ConnectorKind, IconSlot

SAMPLECRM = Path(__file__).parents[2] / "examples" / "samplecrm"


@pytest.mark.parametrize("slot", list(IconSlot))
def test_each_icon_is_a_png_of_its_slots_size(slot: IconSlot) -> None:
    data = (SAMPLECRM / f"{slot.value}.png").read_bytes()
    info = inspect_png(data)
    assert (info.width, info.height) == ICON_SIZES[slot]
    assert len(data) < 16 * 1024  # small committed files


def test_the_definition_is_a_valid_create_body() -> None:
    created = ConnectorCreate.model_validate_json((SAMPLECRM / "connector.json").read_text())
    assert created.key == "samplecrm"
    assert created.allowed_hosts == ["developer.domo.com"]


def test_the_action_and_its_apps_manifest_are_valid_and_agree() -> None:
    action = ConnectorCreate.model_validate_json((SAMPLECRM / "action.json").read_text())
    assert action.kind is ConnectorKind.ACTION
    assert action.allowed_hosts == ["developer.domo.com"]
    manifest = AppManifest.model_validate_json((SAMPLECRM / "app/manifest.json").read_text())
    assert [(m.alias, m.provider_key) for m in manifest.account_mapping] == [("deals", action.key)]
    # The README puts the published action's guid in place of this placeholder.
    assert "'ACTION_GUID'" in (SAMPLECRM / "app/app.js").read_text()


async def test_the_api_answers_the_csv_to_the_right_login_only(
    aiohttp_client: AiohttpClient,
) -> None:
    app = web.Application()
    add_routes(app)
    client = await aiohttp_client(app)
    good = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    bad = base64.b64encode(f"{USERNAME}:wrong".encode()).decode()
    for headers in ({}, {"Authorization": f"Basic {bad}"}):
        response = await client.get("/samplecrm", headers=headers)
        assert response.status == HTTPStatus.UNAUTHORIZED
    response = await client.get("/samplecrm", headers={"Authorization": f"Basic {good}"})
    assert response.status == HTTPStatus.OK
    lines = (await response.text()).split("\r")  # as the process script splits it
    assert lines[1:] == list(CSV_ROWS)
    assert lines[0].split(",")[2] == "Account.Name"


def test_the_local_ca_is_reused_and_its_keys_are_private(tmp_path: Path) -> None:
    first = make_local_ca(tmp_path, ["developer.domo.com"])
    ca = first.ca_file.read_bytes()
    second = make_local_ca(tmp_path, ["developer.domo.com"])
    assert second.ca_file.read_bytes() == ca  # a restarted API stays trusted
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600
