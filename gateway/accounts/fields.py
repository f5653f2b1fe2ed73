"""Which account fields a connector takes, which are secret, and checking credentials against them.

The auth method fixes the standard fields (SPEC 4.2): basic → `username`, `password`;
apikey → `apikey`; oauth2 → the token set (`accesstoken`, `refreshtoken`, set by the OAuth
flow). A connector's `account_fields` declare extra ones. Anything else is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gateway.errors import ValidationFailed

MAX_VALUE_LENGTH: Final = 16 * 1024


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One account field."""

    name: str
    secret: bool
    required: bool


STANDARD_FIELDS: Final[Mapping[str, tuple[FieldSpec, ...]]] = {
    "none": (),
    "basic": (FieldSpec("username", False, True), FieldSpec("password", True, True)),
    "apikey": (FieldSpec("apikey", True, True),),
    "oauth2": (FieldSpec("accesstoken", True, True), FieldSpec("refreshtoken", True, False)),
}


def _declared(item: Any, attribute: str, default: Any) -> Any:
    # A connector's AccountField model, or the same as a plain mapping.
    if isinstance(item, Mapping):
        return item.get(attribute, default)
    return getattr(item, attribute, default)


def field_specs(auth_method: str, account_fields: Sequence[Any]) -> dict[str, FieldSpec]:
    """Every field an account of this connector may carry, by name."""
    specs = {spec.name: spec for spec in STANDARD_FIELDS.get(auth_method, ())}
    for declared in account_fields:
        name = str(_declared(declared, "name", ""))
        secret = bool(_declared(declared, "secret", False))
        required = bool(_declared(declared, "required", False))
        specs.setdefault(name, FieldSpec(name, secret, required))
    return specs


def check_credentials(
    auth_method: str,
    account_fields: Sequence[Any],
    credentials: Mapping[str, Any],
    *,
    partial: bool = False,
) -> dict[str, str]:
    """Validate credentials; returns them as strings.

    `partial` (an update) does not require the required fields.

    Raises:
        ValidationFailed: an undeclared field, a missing required one, or a bad value; the
            errors name fields, never values.
    """
    specs = field_specs(auth_method, account_fields)
    errors: list[dict[str, object]] = []
    values: dict[str, str] = {}
    for name, value in credentials.items():
        if name not in specs:
            errors.append(
                {
                    "loc": ["credentials", name],
                    "msg": "not a field of this connector",
                    "type": "undeclared_field",
                }
            )
        elif not isinstance(value, str | int | float) or isinstance(value, bool):
            errors.append(
                {"loc": ["credentials", name], "msg": "must be a string", "type": "string_type"}
            )
        elif len(str(value)) > MAX_VALUE_LENGTH:
            errors.append({"loc": ["credentials", name], "msg": "is too long", "type": "too_long"})
        else:
            values[name] = str(value)
    if not partial:
        for spec in specs.values():
            if spec.required and not values.get(spec.name):
                errors.append(
                    {"loc": ["credentials", spec.name], "msg": "field required", "type": "missing"}
                )
    if errors:
        raise ValidationFailed("the credentials do not match the connector's fields", errors)
    return values


def split_secret(
    specs: Mapping[str, FieldSpec], values: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(plain fields, secret fields)."""
    plain = {k: v for k, v in values.items() if not specs[k].secret}
    secret = {k: v for k, v in values.items() if specs[k].secret}
    return plain, secret
