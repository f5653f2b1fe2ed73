"""Text field types of the request models, stated the same way to the server and the document."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

# Every regex here names its characters: `\s` means different sets in Python, ECMA-262 and
# Rust (U+0085, U+FEFF), and each of them reads this document somewhere.
CONTROLS: Final = r"\x00-\x1f\x7f-\x9f"
SPACES: Final = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# A one-line value (a name, a label, an id): no control character, no space at either end.
# PostgreSQL refuses NUL in text, and a name that differs from another by a trailing space
# only confuses people. Written as what is refused, because a JSON Schema `pattern` is a
# search and `$` also matches before a final line end: `not: {pattern}` has no such gap.
LINE_REFUSED: Final = rf"[{CONTROLS}]|^[{SPACES}]|[{SPACES}]$"
# Free text (a description, a help text): line ends and tabs are fine, other controls not.
TEXT_REFUSED: Final = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
# A value sent on to a script or sealed (a credential): anything but NUL.
VALUE_REFUSED: Final = r"\x00"


@dataclass(frozen=True)
class Refuses:
    """`Annotated` marker: values that contain a match of `pattern` are refused.

    The server checks it with Python's `re.search`; the JSON schema says `not: {pattern}`,
    which every JSON Schema validator (and the fuzzer) reads the same way.
    """

    pattern: str
    message: str

    def __get_pydantic_core_schema__(
        self, source: type[str], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        compiled = re.compile(self.pattern)

        def check(value: str) -> str:
            if compiled.search(value):
                raise PydanticCustomError("string_refused", self.message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        # `type` too: a bare `pattern` holds for every non-string, and `not` would then refuse it.
        json_schema["not"] = {"type": "string", "pattern": self.pattern}
        return json_schema


@dataclass(frozen=True)
class Matches:
    """`Annotated` marker: a value must contain a match of `pattern` (JSON Schema `pattern`).

    Checked with Python's `re.search`, as JSON Schema tools read a `pattern`, so the server
    and the document agree to the character; `message` never repeats the value.
    """

    pattern: str
    message: str

    def __get_pydantic_core_schema__(
        self, source: type[str], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        compiled = re.compile(self.pattern)

        def check(value: str) -> str:
            if not compiled.search(value):
                raise PydanticCustomError("string_pattern_mismatch", self.message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema


class SchemaNote:
    """`Annotated` marker: keys added to the JSON schema only (what a validator checks)."""

    def __init__(self, **keys: object) -> None:
        self.keys = keys

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(self.keys)
        return json_schema


ONE_LINE: Final = Refuses(
    LINE_REFUSED, "must not contain control characters or begin or end with a space"
)
FREE_TEXT: Final = Refuses(
    TEXT_REFUSED, "must not contain control characters but tab and line ends"
)
NO_NUL: Final = Refuses(VALUE_REFUSED, "must not contain NUL characters")

NAME_LENGTH: Final = 200
Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_LENGTH), ONE_LINE]
"""A display name: a customer's, a user's, a token's, an account's, a connector's."""

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=100), ONE_LINE]
"""An object's id as the API shows it (a path segment, a reference in a body)."""

Email = Annotated[
    str,
    StringConstraints(max_length=320),
    ONE_LINE,
    Matches(rf"^[^@{CONTROLS}{SPACES}]+@[^@{CONTROLS}{SPACES}]+$", "must be an e-mail address"),
]
"""An e-mail address: something, `@`, something, without spaces or controls."""
