"""Behind a proxy: cloud requests follow HTTP(S)_PROXY, loopback never does, CAs are honoured.

A real loopback forward proxy (tests/net_stubs.py) records each request line it gets;
for https it sees only ``CONNECT host:443`` and then closes, so nothing leaves the
machine. Name resolution of anything but loopback is blocked for the whole module, so a
request that ignored the proxy fails here instead of reaching the internet.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from _secrets_plugin import leaks_in
from net_stubs import answer, stub_server

import pixery_widgets as px
from pixery_widgets.core import http
from pixery_widgets.core.config import Settings, load_settings
from pixery_widgets.core.errors import ConnectionFailedError
from pixery_widgets.core.http import get_client, is_loopback
from pixery_widgets.core.types import ServerState
from pixery_widgets.providers import _cloud_send
from pixery_widgets.providers.status import acheck_selfhosted

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
HEALTH = {"status": "healthy", "current_model": None, "available_models": ["animagine"]}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def only_loopback_resolves(monkeypatch):
    """Any name or address but loopback fails to resolve, as on a machine with no route out."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not is_loopback(name):
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: resolution blocked in this test")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(autouse=True)
def env_looked_at_every_request(monkeypatch):
    """The shared client looks at the proxy variables at most every second; here, always."""
    monkeypatch.setattr(http, "ENV_RECHECK_S", 0.0)


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch):
    async def no_wait(_seconds: float) -> None:
        await asyncio.sleep(0)

    monkeypatch.setattr(_cloud_send, "RETRY", _cloud_send.RetryPolicy(jitter=0.0, sleep=no_wait))


def refuses_tunnels():
    """A proxy that reads the CONNECT and refuses it: the request line is all it gets."""
    return stub_server(answer("403 Forbidden", b"no tunnels today"))


def test_a_cloud_request_goes_through_https_proxy_and_the_key_stays_out_of_it(
    tmp_path, monkeypatch
):
    with refuses_tunnels() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        settings = load_settings(cwd=tmp_path, home=tmp_path)  # the session's sentinel keys
        with pytest.raises(ConnectionFailedError) as info:
            run(px.agenerate("a lighthouse at dusk", "gpt-image", settings=settings))
    assert proxy.heads and set(proxy.heads) == {b"CONNECT api.openai.com:443 HTTP/1.1"}
    assert len(proxy.heads) == 2  # nothing was sent to OpenAI: repeated once, as it may be
    assert not any(leaks_in(head) for head in proxy.raw)  # the key only ever goes in the tunnel
    assert info.value.reason == "proxy failed" and "HTTPS_PROXY" in str(info.value)


def test_plain_http_to_a_remote_server_goes_through_http_proxy(monkeypatch):
    remote = "http://203.0.113.7:8000"  # blocked above: only the proxy can reach it
    with stub_server(answer("200 OK", json.dumps(HEALTH).encode())) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        status = run(acheck_selfhosted(Settings(selfhosted_url=remote)))
    assert status.state is ServerState.HEALTHY, status
    assert b"GET http://203.0.113.7:8000/health HTTP/1.1" in proxy.heads


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"])
def test_the_self_hosted_server_on_loopback_never_goes_through_a_proxy(
    sim, tmp_path, monkeypatch, variable
):
    with refuses_tunnels() as proxy:
        monkeypatch.setenv(variable, proxy.url)
        settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "archive")
        status = run(acheck_selfhosted(settings))
        generation = run(px.agenerate("a lighthouse", "animagine", seed=1, settings=settings))
    assert status.state is ServerState.HEALTHY and generation.png_bytes
    assert proxy.heads == []
    assert {"/health", "/models", "/loras", "/generate"} <= {e.path for e in sim.request_log}


def test_a_proxy_set_after_the_first_request_is_used_from_the_next_one(sim, tmp_path, monkeypatch):
    """One loop, as in a kernel: the client made for the first request is replaced when
    HTTPS_PROXY appears, and requests still running on it are not cut."""
    settings = load_settings(cwd=tmp_path, home=tmp_path)

    async def session(proxy_url: str) -> tuple[ConnectionFailedError, bool]:
        first = get_client()
        await acheck_selfhosted(Settings(selfhosted_url=sim.url))  # no proxy yet
        monkeypatch.setenv("HTTPS_PROXY", proxy_url)
        with pytest.raises(ConnectionFailedError) as info:
            await px.agenerate("a lighthouse at dusk", "gpt-image", settings=settings)
        await asyncio.sleep(0)  # the old client's close runs
        return info.value, first.is_closed and get_client() is not first

    with refuses_tunnels() as proxy:
        error, replaced = run(session(proxy.url))
    assert error.reason == "proxy failed"
    assert b"CONNECT api.openai.com:443 HTTP/1.1" in proxy.heads
    assert replaced


def test_a_request_running_when_the_proxy_changes_finishes_on_its_client(sim_factory, monkeypatch):
    sim = sim_factory(gen_seconds=1.0)
    settings = Settings(selfhosted_url=sim.url)

    async def session() -> tuple[bool, bool, bytes]:
        drawing = asyncio.ensure_future(
            px.agenerate("a lighthouse", "animagine", seed=1, settings=settings, archive=False)
        )
        while not any(entry.path == "/generate" for entry in sim.request_log):
            await asyncio.sleep(0.01)  # until the server has the request
        old = get_client()
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # never used: loopback
        assert get_client() is not old  # new requests get a new client at once
        open_while_drawing = not old.is_closed
        generation = await asyncio.wait_for(drawing, 20)
        await asyncio.sleep(0)
        return open_while_drawing, old.is_closed, generation.png_bytes

    open_while_drawing, closed_after, png = run(session())
    assert open_while_drawing and closed_after and png


def test_loopback_is_every_name_and_address_of_this_machine_and_no_other():
    for host in ("localhost", "LOCALHOST.", "gpu.localhost", "127.0.0.1", "127.5.6.7", "::1",
                 "[::1]", "::ffff:127.0.0.1"):  # fmt: skip
        assert is_loopback(host), host
    for host in ("api.openai.com", "localhost.example.com", "10.0.0.1", "128.0.0.1", "::2", ""):
        assert not is_loopback(host), host


def test_routing_follows_the_environment_except_for_loopback(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example.com,10.1.2.3")

    async def routes() -> dict[str, bool]:
        client = get_client()
        direct = client._transport  # httpx's own pool; a proxy is another transport
        return {
            url: client._transport_for_url(httpx.URL(url)) is not direct
            for url in (
                "https://api.openai.com/v1/images/generations",
                "http://203.0.113.7:8000/health",
                "https://internal.example.com/x",
                "http://10.1.2.3:8000/health",
                "http://127.0.0.1:8000/health",
                "http://127.9.9.9:8000/health",
                "http://localhost:8000/health",
                "http://[::1]:8000/health",
            )
        }

    proxied = run(routes())
    assert proxied == {
        "https://api.openai.com/v1/images/generations": True,
        "http://203.0.113.7:8000/health": True,
        "https://internal.example.com/x": False,  # NO_PROXY, as plain httpx reads it
        "http://10.1.2.3:8000/health": False,
        "http://127.0.0.1:8000/health": False,  # loopback: never through a proxy
        "http://127.9.9.9:8000/health": False,
        "http://localhost:8000/health": False,
        "http://[::1]:8000/health": False,
    }


def test_ssl_cert_file_is_honoured_for_a_server_with_its_own_ca(tmp_path: Path, monkeypatch):
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    healthy = answer("200 OK", json.dumps(HEALTH).encode(), {"Content-Type": "application/json"})
    with stub_server(healthy, tls=context) as server:
        url = f"https://127.0.0.1:{server.port}"
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        trusted = run(acheck_selfhosted(Settings(selfhosted_url=url)))
        monkeypatch.delenv("SSL_CERT_FILE")
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        untrusted = run(acheck_selfhosted(Settings(selfhosted_url=url)))
    assert trusted.state is ServerState.HEALTHY, trusted
    assert untrusted.state is ServerState.OFFLINE and untrusted.reason == "unreachable"
