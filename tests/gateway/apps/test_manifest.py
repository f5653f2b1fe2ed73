"""The manifest model: what is checked, what is kept, and each bad field named."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.apps.manifest import parse_manifest


def _parse(document: dict[str, Any]) -> dict[str, Any]:
    return parse_manifest(json.dumps(document).encode()).document()


def _locs(document: object) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as raised:
        parse_manifest(json.dumps(document).encode())
    return [error["loc"] for error in raised.value.errors()]


def test_a_domo_manifest_is_kept_whole_with_canonical_names() -> None:
    document = {
        "name": "Sales board",
        "version": "1.0.2",
        "id": "5d0b9c1e",  # written by Domo's CLI: unknown here, kept
        "size": {"width": 2, "height": 3},
        "fullpage": True,
        "accountMapping": [{"alias": "sf", "dataProviderType": "salesforce", "accountId": 7}],
        "mapping": [{"alias": "sales", "dataSetId": "ds-1", "fields": []}],
        "collections": [{"name": "notes", "syncEnabled": False}],
    }
    assert _parse(document) == {
        "name": "Sales board",
        "version": "1.0.2",
        "accountMapping": [{"alias": "sf", "dataProviderKey": "salesforce", "accountId": 7}],
        "datasetsMapping": [{"alias": "sales", "dataSetId": "ds-1", "fields": []}],
        "collections": [{"name": "notes", "syncEnabled": False}],
        "size": {"width": 2.0, "height": 3.0},
        "fullpage": True,
        "id": "5d0b9c1e",
    }


def test_name_and_version_are_required() -> None:
    assert sorted(_locs({})) == [("name",), ("version",)]


def test_each_bad_field_is_named() -> None:
    locs = _locs(
        {
            "name": "",
            "version": 1,
            "fullpage": "yes",
            "size": {"width": "wide"},
            "accountMapping": [
                {"alias": "ok", "dataProviderKey": "crm"},
                {"alias": "has/slash", "dataProviderKey": "crm"},
                {"alias": "nokey"},
                {"alias": "k", "dataProviderKey": " spaced"},
            ],
            "collections": [{"schema": {}}],
        }
    )
    assert sorted(locs, key=str) == sorted(
        [
            ("name",),
            ("version",),
            ("fullpage",),
            ("size", "width"),
            ("accountMapping", 1, "alias"),
            ("accountMapping", 2, "dataProviderKey"),
            ("accountMapping", 3, "dataProviderKey"),
            ("collections", 0, "name"),
        ],
        key=str,
    )


def test_aliases_are_unique() -> None:
    document = {
        "name": "a",
        "version": "1",
        "accountMapping": [
            {"alias": "sf", "dataProviderKey": "crm"},
            {"alias": "sf", "dataProviderType": "crm"},
        ],
    }
    with pytest.raises(ValidationError, match="entry 1: alias 'sf' is declared twice") as raised:
        parse_manifest(json.dumps(document).encode())
    assert [error["loc"] for error in raised.value.errors()] == [("accountMapping",)]


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        (
            {"accountMapping": [{"alias": "a", "dataProviderKey": "x", "dataProviderType": "x"}]},
            ("accountMapping", 0),
        ),
        ({"mapping": [], "datasetsMapping": []}, ()),
    ],
)
def test_two_names_for_one_field_are_refused(document: dict[str, Any], loc: tuple[Any]) -> None:
    assert _locs({"name": "a", "version": "1", **document}) == [loc]


def test_a_manifest_that_is_not_an_object_is_refused() -> None:
    assert _locs(["name"]) == [()]
