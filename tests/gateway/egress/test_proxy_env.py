"""THREATS E8: proxy environment variables have no effect on egress."""

from __future__ import annotations

import pytest

from tests.gateway.egress.fakes import MakeClient, StartUpstream, Upstream, admitting, get


async def test_e8_proxy_variables_are_ignored(
    make_client: MakeClient,
    upstream: Upstream,
    start_upstream: StartUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = await start_upstream()  # counts whatever a proxying client would send it
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.setenv(name, proxy.origin)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # The proxy is admitted too, so only `trust_env=False` keeps traffic away from it.
    client = make_client(admitting(upstream, proxy))
    response = await get(client, f"{upstream.origin}/echo")
    assert response.status == 200
    assert len(upstream.seen) == 1
    assert proxy.seen == []
