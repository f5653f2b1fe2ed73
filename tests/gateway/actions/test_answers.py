"""The renderings of a first cell (no HTTP): XML names, CSV shapes, YAML, JSON."""

from __future__ import annotations

import json

import yaml

from actions.answers import CSV, JSON, XML, YAML, render, to_csv, to_xml


def test_xml_maps_objects_arrays_scalars_and_null() -> None:
    document = to_xml({"a b": 1, "ok": False, "none": None, "list": ["x<y", 2.5], "xmlish": "&"})
    assert document.splitlines()[1] == (
        '<result><entry key="a b">1</entry><ok>false</ok><none null="true"/>'
        "<list><item>x&lt;y</item><item>2.5</item></list>"
        '<entry key="xmlish">&amp;</entry></result>'
    )
    assert to_xml("plain").endswith("<result>plain</result>\n")


def test_csv_shapes() -> None:
    assert to_csv({"a": 1, "b": {"c": 2}}) == 'a,b\r\n1,"{""c"": 2}"\r\n'
    assert to_csv([1, "two", None]) == '1\r\ntwo\r\n""\r\n'  # an empty value, not no row
    assert to_csv("one, value") == '"one, value"\r\n'
    assert to_csv(None) == ""


def test_json_and_yaml_round_trip() -> None:
    value = {"deals": [{"id": 1}], "note": "caf\u00e9"}
    assert json.loads(render(value, JSON)) == value
    assert yaml.safe_load(render(value, YAML)) == value
    assert render(value, XML).startswith(b"<?xml")
    assert render([], CSV) == b""
