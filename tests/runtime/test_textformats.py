"""The CSV and XML parsers behind `magicParseCSV`, `magicParseXML` and `DOMO.parseXML`."""

from __future__ import annotations

import pytest

from runtime.textformats import parse_csv, parse_xml

# --- parse_csv --------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_csv_accepts_lf_crlf_and_bare_cr(end: str) -> None:
    assert parse_csv(end.join(["a,b", "1,2", "3,4"])) == [["a", "b"], ["1", "2"], ["3", "4"]]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_csv_trailing_line_end_adds_no_row(end: str) -> None:
    assert parse_csv(f"a,b{end}1,2{end}") == [["a", "b"], ["1", "2"]]


def test_csv_skips_empty_lines() -> None:
    assert parse_csv("a,b\n\n1,2\r\n\r\n3,4\n\n") == [["a", "b"], ["1", "2"], ["3", "4"]]


def test_csv_quoted_fields_keep_separators_quotes_and_line_breaks() -> None:
    text = 'name,note\r\n"Smith, Bo","say ""hi"""\r\n"two\r\nlines","cr\ronly"\n"lf\nonly",""\n'
    assert parse_csv(text) == [
        ["name", "note"],
        ["Smith, Bo", 'say "hi"'],
        ["two\r\nlines", "cr\ronly"],
        ["lf\nonly", ""],
    ]


def test_csv_keeps_empty_fields_and_spaces() -> None:
    assert parse_csv("a,b,c\n, x ,\n") == [["a", "b", "c"], ["", " x ", ""]]


def test_csv_drops_a_byte_order_mark() -> None:
    assert parse_csv("\ufeffid,name\n1,x\n") == [["id", "name"], ["1", "x"]]


def test_csv_of_empty_text_has_no_rows() -> None:
    assert parse_csv("") == []
    assert parse_csv("\r\n\r\n") == []


def test_csv_rows_shorter_than_the_header_are_kept() -> None:
    assert parse_csv("a,b,c\n1\n") == [["a", "b", "c"], ["1"]]


def test_csv_row_longer_than_the_header_is_an_error_naming_its_line() -> None:
    with pytest.raises(
        ValueError, match=r"^CSV line 3 has 3 fields, more than the 2 of the header$"
    ):
        parse_csv("a,b\n1,2\n1,2,3\n")


def test_csv_unterminated_quote_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^CSV line 2: unexpected end of data$"):
        parse_csv('a,b\n1,"open\n')


def test_csv_text_after_a_closing_quote_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^CSV line 2: ',' expected after '\"'$"):
        parse_csv('a,b\n"1"x,2\n')


def test_csv_accepts_fields_larger_than_the_csv_module_default() -> None:
    big = "x" * 1_000_000
    assert parse_csv(f'a\n"{big}"\n') == [["a"], [big]]


def test_csv_accepts_nul_characters() -> None:
    assert parse_csv("a\nx\x00y\n") == [["a"], ["x\x00y"]]


# --- parse_xml --------------------------------------------------------------------------


def test_xml_root_is_returned_under_its_tag() -> None:
    assert parse_xml("<root><a>1</a><b>two</b></root>") == {"root": {"a": "1", "b": "two"}}


def test_xml_repeated_siblings_become_arrays_single_ones_do_not() -> None:
    text = "<r><item>1</item><other>x</other><item>2</item><item>3</item></r>"
    assert parse_xml(text) == {"r": {"item": ["1", "2", "3"], "other": "x"}}


def test_xml_attributes_and_text() -> None:
    text = '<r><a id="1">text</a><b id="2"/><c id="3"><d>x</d></c></r>'
    assert parse_xml(text) == {
        "r": {
            "a": {"@id": "1", "#text": "text"},
            "b": {"@id": "2"},
            "c": {"@id": "3", "d": "x"},
        }
    }


def test_xml_text_beside_children_is_text_but_indentation_is_not() -> None:
    text = "<r>\n  <p>Hello <b>world</b> again</p>\n  <q>\n    <x>1</x>\n  </q>\n</r>"
    assert parse_xml(text) == {"r": {"p": {"b": "world", "#text": "Hello  again"}, "q": {"x": "1"}}}


def test_xml_empty_element_is_an_empty_string() -> None:
    assert parse_xml("<r><a/><b></b></r>") == {"r": {"a": "", "b": ""}}


def test_xml_text_only_element_keeps_its_text_exactly() -> None:
    assert parse_xml("<r><a>  padded  </a></r>") == {"r": {"a": "  padded  "}}


def test_xml_namespaces_are_dropped_from_names() -> None:
    text = (
        '<s:Envelope xmlns:s="urn:soap" xmlns:x="urn:x" xmlns="urn:default">'
        '<s:Body x:kind="k"><x:Item>1</x:Item><Item>2</Item></s:Body></s:Envelope>'
    )
    assert parse_xml(text) == {"Envelope": {"Body": {"@kind": "k", "Item": ["1", "2"]}}}


def test_xml_comments_processing_instructions_and_cdata() -> None:
    text = '<?xml version="1.0" encoding="UTF-8"?><r><!-- c --><?pi x?><a><![CDATA[<b>&]]></a></r>'
    assert parse_xml(text) == {"r": {"a": "<b>&"}}


def test_xml_character_references_are_decoded() -> None:
    assert parse_xml("<r>&lt;&amp;&#233;&#x41;</r>") == {"r": "<&éA"}


def test_xml_leading_whitespace_and_byte_order_mark_are_ignored() -> None:
    assert parse_xml('\ufeff\n  <?xml version="1.0"?>\n<r/>') == {"r": ""}


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<r>&xxe;</r>"""


@pytest.mark.parametrize(
    "text", [BILLION_LAUGHS, EXTERNAL_ENTITY, '<!DOCTYPE r SYSTEM "x.dtd"><r/>']
)
def test_xml_with_a_dtd_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^XML refused: documents with a DTD"):
        parse_xml(text)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("<r>", "no element found"),
        ("<r></s>", "mismatched tag"),
        ("not xml", "syntax error"),
        ("", "no element found"),
        ("<r>&nbsp;</r>", "undefined entity"),
    ],
)
def test_xml_not_well_formed_is_an_error(text: str, detail: str) -> None:
    with pytest.raises(ValueError, match=rf"^XML is not well-formed: {detail}"):
        parse_xml(text)


def test_xml_nested_too_deeply_is_an_error() -> None:
    text = "<a>" * 300 + "</a>" * 300
    with pytest.raises(ValueError, match=r"^XML nests elements more than 256 deep$"):
        parse_xml(text)
