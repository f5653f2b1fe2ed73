"""`GATEWAY_APPS_ORIGIN`: the default follows the gateway's port, a bad template stops the
start naming the variable, and a `Host` matches an instance origin exactly."""

from __future__ import annotations

import pytest

from gateway.__main__ import main
from gateway.apps.origin import InstanceOrigins
from gateway.settings import Settings, SettingsError, load_settings

IID = "01a2346e-7876-7198-8d2b-e4b86fd2c689"


def test_the_default_origin_is_on_the_gateways_port() -> None:
    origins = Settings(port=9123).instance_origins()
    assert origins.origin(IID) == f"http://{IID}.apps.localhost:9123"
    moved = Settings(port=9123).model_copy(update={"port": 9124}).instance_origins()
    assert moved.origin(IID) == f"http://{IID}.apps.localhost:9124"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("https://apps.example.com", "exactly once"),
        ("ftp://{instance}.apps.example.com", "http:// or https://"),
        ("https://{instance}", "host name with a domain"),
        ("https://apps.example.com/{instance}", "host name with a domain"),
        ("https://{instance}.apps.example.com/app", "no path"),
        ("https://user@{instance}.apps.example.com", "no user name"),
        ("https://{instance}.apps.example.com:99999", "not a URL"),
    ],
)
def test_a_bad_template_names_the_variable(template: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"GATEWAY_APPS_ORIGIN: .*{message}"):
        load_settings(apps_origin=template)


def test_the_gateway_may_not_live_in_the_apps_domain() -> None:
    with pytest.raises(SettingsError, match="GATEWAY_APPS_ORIGIN: GATEWAY_PUBLIC_URL"):
        load_settings(
            public_url="https://gateway.apps.example.com",
            apps_origin="https://{instance}.apps.example.com",
        )
    apart = load_settings(
        public_url="https://gateway.example.com",
        apps_origin="https://{instance}.apps.example.com",
    )
    assert apart.public_base() == "https://gateway.example.com"


def test_serve_exits_2_on_a_bad_template(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_APPS_ORIGIN", "https://apps.example.com")
    assert main(["serve", "--port", "0"]) == 2
    assert "GATEWAY_APPS_ORIGIN" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "instance"),
    [
        (f"{IID}.apps.example.com", IID),
        (f"{IID.upper()}.APPS.example.com:443", IID),  # case and the default port ignored
        ("anything.apps.example.com", "anything"),  # the apps domain, an unknown instance
        (f"{IID}.apps.example.com:8443", None),
        (f"{IID}.apps.example.com.", None),
        (f"x.{IID}.apps.example.com", None),
        ("apps.example.com", None),
        ("gateway.example.com", None),
    ],
)
def test_hosts_match_exactly(host: str, instance: str | None) -> None:
    origins = InstanceOrigins("https://{instance}.apps.example.com")
    assert origins.instance_of(host) == instance
    assert origins.secure


def test_an_explicit_default_port_is_the_same_origin() -> None:
    origins = InstanceOrigins("http://{instance}.apps.example.com:80/")
    assert origins.origin(IID) == f"http://{IID}.apps.example.com"
    assert origins.instance_of(f"{IID}.apps.example.com:80") == IID
