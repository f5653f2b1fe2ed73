"""CSV and XML parsers behind `datagrid.magicParseCSV`, `magicParseXML` and `DOMO.parseXML`.

They run in the worker, called from JavaScript through `__gw_util` (docs/decisions/0002), on
text an upstream server sent: hostile input must end in a `ValueError` with a clear message,
never in a hang, a huge allocation or a network access.
"""

from __future__ import annotations

import csv
import io
from typing import Final
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from runtime.model import JsonValue

_CSV_FIELD_LIMIT: Final = 2**31 - 1
"""No limit of its own: the text is already bounded by the response size cap."""

_XML_MAX_DEPTH: Final = 256
"""Deeper documents are refused rather than risk Python's (and the script's) stack."""


def parse_csv(text: str) -> list[list[str]]:
    """Split CSV text into rows of strings; the first row is the header.

    Line ends may be LF, CRLF or a bare CR; quoted fields may hold separators, doubled quotes
    and line breaks. Completely empty lines are skipped, so a trailing line end adds no row.
    A leading byte-order mark is dropped. Rows may be shorter than the header (the datagrid
    fills them with nulls), not longer.

    Raises:
        ValueError: the text is not well-formed CSV (an unterminated quoted field, text after
            a closing quote) or a row has more fields than the header.
    """
    # Global to the csv module, but every caller in a worker wants the same value.
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    # newline="" makes the reader see \r, \n and \r\n as line ends and keep the ones inside
    # quoted fields as they were.
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if not row:
                continue
            if rows and len(row) > len(rows[0]):
                raise ValueError(
                    f"CSV line {reader.line_num} has {len(row)} fields, more than the "
                    f"{len(rows[0])} of the header"
                )
            rows.append(row)
    except csv.Error as exc:
        raise ValueError(f"CSV line {reader.line_num}: {exc}") from exc
    return rows


def parse_xml(text: str) -> JsonValue:
    """Turn an XML document into JSON values: `{root_tag: value}`.

    An element becomes an object: its attributes as `@name`, its child elements by tag name
    (repeated siblings as an array, in document order), and its text as `#text` when it also
    has attributes or children. An element with only text becomes that string, an empty one
    `""`. Namespaces are dropped from tag and attribute names (the local name is kept).
    Comments and processing instructions are ignored.

    Raises:
        ValueError: the text is not well-formed XML, declares a DTD or entities (refused:
            entity expansion and external references are attacks here), or nests elements
            too deeply.
    """
    try:
        root = fromstring(text.lstrip("\ufeff \t\r\n"), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ValueError(f"XML refused: {_defused_reason(exc)}") from exc
    except ParseError as exc:
        raise ValueError(f"XML is not well-formed: {exc}") from exc
    return {_local(root.tag): _element_value(root, 1)}


def _defused_reason(exc: DefusedXmlException) -> str:
    name = type(exc).__name__
    if name == "DTDForbidden":
        return "documents with a DTD (<!DOCTYPE ...>) are not accepted"
    if name == "EntitiesForbidden":
        return "entity declarations are not accepted"
    if name == "ExternalReferenceForbidden":
        return "external references are not accepted"
    return str(exc)


def _local(name: str) -> str:
    """`{uri}name` → `name`."""
    return name.rpartition("}")[2]


def _element_value(element: Element, depth: int) -> JsonValue:
    if depth > _XML_MAX_DEPTH:
        raise ValueError(f"XML nests elements more than {_XML_MAX_DEPTH} deep")
    children = list(element)
    if not children and not element.attrib:
        return element.text or ""
    value: dict[str, JsonValue] = {
        "@" + _local(name): attribute for name, attribute in element.attrib.items()
    }
    for child in children:
        tag = _local(child.tag)
        child_value = _element_value(child, depth + 1)
        if tag not in value:
            value[tag] = child_value
        elif isinstance(value[tag], list):
            value[tag].append(child_value)
        else:
            value[tag] = [value[tag], child_value]
    text = _own_text(element, children)
    if text:
        value["#text"] = text
    return value


def _own_text(element: Element, children: list[Element]) -> str:
    """The element's text between its children; indentation between elements is not text."""
    if not children:
        return element.text or ""
    pieces = [element.text, *(child.tail for child in children)]
    return "".join(piece for piece in pieces if piece and not piece.isspace()).strip()
