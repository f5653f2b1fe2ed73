"""TLS is always verified: system trust store, `SSL_CERT_FILE`, plus the operator's CA file."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_aiohttp import AiohttpServer

from gateway.egress import AddressPolicy, EgressClient
from tests.gateway.egress.fakes import (
    FakeResolver,
    Upstream,
    admitting,
    get,
    make_upstream_app,
    refused,
)


@dataclass(frozen=True, slots=True)
class Pki:
    """A throwaway CA and a server certificate for `api.example.com`."""

    ca: Path
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str, issuer: str, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Write a CA and a leaf certificate signed by it."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = (
        _certificate("Test CA", "Test CA", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        _certificate("api.example.com", "Test CA", leaf_key)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("api.example.com")]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = Pki(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
async def tls_upstream(aiohttp_server: AiohttpServer, pki: Pki) -> Upstream:
    """A fake upstream serving HTTPS on 127.0.0.1 with the `api.example.com` certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert, pki.key)
    server = await aiohttp_server(make_upstream_app(), ssl=context)
    assert server.port is not None
    return Upstream(port=server.port)


def tls_client(upstream: Upstream, ca_file: Path | None = None) -> EgressClient:
    """A client pinning both test names to the TLS upstream."""
    names = (
        f"api.example.com:{upstream.port}:127.0.0.1",
        f"other.example:{upstream.port}:127.0.0.1",
    )
    return EgressClient(
        admitting(upstream, resolve=names),
        ca_file=None if ca_file is None else str(ca_file),
        resolver=FakeResolver({}),
    )


async def test_operator_ca_file_is_trusted(tls_upstream: Upstream, pki: Pki) -> None:
    async with tls_client(tls_upstream, pki.ca) as client:
        response = await get(client, f"https://api.example.com:{tls_upstream.port}/echo")
    assert response.status == 200


async def test_unknown_ca_is_refused(tls_upstream: Upstream) -> None:
    async with tls_client(tls_upstream) as client:
        error = await refused(get(client, f"https://api.example.com:{tls_upstream.port}/echo"))
    assert error.code == "upstream_unreachable"
    assert error.message == "the TLS certificate of host api.example.com is not trusted"


async def test_name_mismatch_is_refused(tls_upstream: Upstream, pki: Pki) -> None:
    async with tls_client(tls_upstream, pki.ca) as client:
        error = await refused(get(client, f"https://other.example:{tls_upstream.port}/echo"))
    assert error.code == "upstream_unreachable"
    assert "TLS" in error.message


async def test_ssl_cert_file_is_honoured(
    tls_upstream: Upstream, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    async with tls_client(tls_upstream) as client:
        response = await get(client, f"https://api.example.com:{tls_upstream.port}/echo")
    assert response.status == 200


def routed_client(upstream: Upstream, name: str, ca_file: Path) -> EgressClient:
    """A client that sends `name:443` to the TLS upstream's port (`connect_to`)."""
    policy = AddressPolicy(
        allowed_networks=(upstream.endpoint,),
        connect_to=(f"{name}:443:127.0.0.1:{upstream.port}",),
    )
    return EgressClient(policy, ca_file=str(ca_file), resolver=FakeResolver({}))


async def test_connect_to_verifies_the_urls_host(tls_upstream: Upstream, pki: Pki) -> None:
    # The certificate names api.example.com only: the handshake checked the URL's host,
    # not the dialled 127.0.0.1.
    async with routed_client(tls_upstream, "api.example.com", pki.ca) as client:
        response = await get(client, "https://api.example.com/echo")
    assert response.status == 200
    assert json.loads(response.body)["host"] == "api.example.com"
    assert response.trace[0].url == "https://api.example.com/echo"


async def test_connect_to_does_not_lend_a_certificate_to_another_name(
    tls_upstream: Upstream, pki: Pki
) -> None:
    async with routed_client(tls_upstream, "other.example", pki.ca) as client:
        error = await refused(get(client, "https://other.example/echo"))
    assert error.code == "upstream_unreachable"
    assert "TLS" in error.message
