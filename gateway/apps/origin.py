"""Each app instance's own origin, from the `GATEWAY_APPS_ORIGIN` template (SPEC 4.2).

The template is an origin with `{instance}` in its host, such as
`https://{instance}.apps.example.com` or `http://{instance}.apps.localhost:8080`. A request
belongs to an instance origin when its `Host` matches the template exactly (compared in
lower case, a scheme's default port written or not): the label in place of `{instance}` is
the instance id. Any host the template admits belongs to the apps domain, also with a label
that is no instance id (that names an instance that does not exist): the gateway's own API
is never served there.
"""

from __future__ import annotations

import re
from typing import Final

from yarl import URL

PLACEHOLDER: Final = "{instance}"
DEFAULT_TEMPLATE: Final = "http://{instance}.apps.localhost:{port}"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# What stands in for `{instance}` while the template is checked: an id's shape.
_SAMPLE_ID: Final = "01234567-89ab-7cde-8f01-23456789abcd"
# One DNS label: an id (UUID text) is one, lower case.
_LABEL: Final = r"([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"


class InstanceOrigins:
    """The origins of app instances: each instance's origin, and the instance of a `Host`.

    Raises:
        ValueError: the template is not an http(s) origin with `{instance}` in its host
            (the message says what is wrong; settings name the variable).
    """

    def __init__(self, template: str) -> None:
        if template.count(PLACEHOLDER) != 1:
            raise ValueError(f"the template must hold {PLACEHOLDER} exactly once")
        try:
            url = URL(template.replace(PLACEHOLDER, _SAMPLE_ID))
            port = url.explicit_port
        except (ValueError, UnicodeError):
            raise ValueError("the template is not a URL") from None
        if url.scheme not in _DEFAULT_PORTS:
            raise ValueError("the template must start with http:// or https://")
        host = (url.raw_host or "").lower()
        if _SAMPLE_ID not in host or host.count(".") < 1:
            raise ValueError(f"{PLACEHOLDER} must be part of a host name with a domain")
        if url.raw_user is not None or url.raw_password is not None:
            raise ValueError("the template takes no user name or password")
        if url.raw_path not in ("", "/") or url.raw_query_string or url.raw_fragment:
            raise ValueError("the template is an origin: no path, query or fragment")
        prefix, suffix = host.split(_SAMPLE_ID)
        if port == _DEFAULT_PORTS[url.scheme]:
            port = None
        self.scheme: Final = url.scheme
        self.secure: Final = url.scheme == "https"
        self._prefix = prefix
        self._suffix = suffix if port is None else f"{suffix}:{port}"
        self._host = re.compile(re.escape(prefix) + _LABEL + re.escape(self._suffix))

    def origin(self, instance_id: str) -> str:
        """The instance's origin as browsers write it (`Origin` header): no default port."""
        return f"{self.scheme}://{self._prefix}{instance_id}{self._suffix}"

    def instance_of(self, host: str) -> str | None:
        """The instance a `Host` header names, or None when it is not an instance origin."""
        host = host.lower()
        default = f":{_DEFAULT_PORTS[self.scheme]}"
        if host.endswith(default):
            host = host.removesuffix(default)
        match = self._host.fullmatch(host)
        return match.group(1) if match else None
