"""What sits in front of a rented box answers too; each answer is told in words.

A proxy that moved (a redirect), a plain http:// request sent to a port that speaks
TLS, a proxy that limits the pace (429 with Retry-After, which a batch waits out).
Byte-exact answers through respx; the TLS cases against real loopback servers
(tests/net_stubs.py; a certificate made by trustme at test time).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import io
import ssl
import time
from typing import Any

import httpx
import pytest
import respx
import trustme
from net_stubs import TLS_ALERT, answer, send_bytes, stub_server
from PIL import Image

import pixery_widgets as px
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import (
    ConnectionFailedError,
    RateLimitError,
    RequestRejectedError,
    ServerError,
)
from pixery_widgets.core.types import ServerState
from pixery_widgets.providers.selfhosted import SelfHostedClient
from pixery_widgets.providers.status import acheck_selfhosted
from pixery_widgets.session import batch_run

URL = "http://203.0.113.7:8000"
HTTPS_WORDS = "it expects https://"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- redirects ----------------------------------------------------------------------------------


def test_a_redirect_says_where_it_points_masked_and_which_setting_to_change():
    moved = "https://gpu-2.example.net/proxy/8000/health?token=s3cr3t"
    with respx.mock:
        respx.get(f"{URL}/health").mock(
            return_value=httpx.Response(301, headers={"Location": moved})
        )
        with pytest.raises(ServerError) as info:
            run(SelfHostedClient(URL).health())
        status = run(acheck_selfhosted(Settings(selfhosted_url=URL)))
    message = str(info.value)
    assert "redirect (HTTP 301) to https://gpu-2.example.net/proxy/8000/health?token=***" in message
    assert "SELFHOSTED_API_URL may need changing" in message and "s3cr3t" not in message
    assert info.value.status_code == 301
    assert status.state is ServerState.OFFLINE and status.reason == "redirected (HTTP 301)"


def test_a_relative_redirect_is_resolved_and_one_without_location_says_so():
    with respx.mock:
        respx.get(f"{URL}/health").mock(
            return_value=httpx.Response(307, headers={"Location": "/v2/health"})
        )
        respx.get(f"{URL}/models").mock(return_value=httpx.Response(302))
        with pytest.raises(ServerError, match=r"to http://203\.0\.113\.7:8000/v2/health"):
            run(SelfHostedClient(URL).health())
        with pytest.raises(ServerError, match="without saying where to"):
            run(SelfHostedClient(URL).models())


# -- plain http:// to a TLS port ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_context() -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 from a throwaway CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def assert_says_https(error: Exception, port: int) -> None:
    assert isinstance(error, px.PixeryError) and error.reason == HTTPS_WORDS, error
    assert f"change SELFHOSTED_API_URL to https://127.0.0.1:{port}" in str(error), str(error)


def test_plain_http_to_a_real_tls_server_says_it_is_an_https_address(tls_context):
    """The server resets the connection on a plain request, as Python's ssl does: the
    client asks the https:// address and finds TLS there."""
    with stub_server(answer("200 OK", b"{}"), tls=tls_context) as server:
        with pytest.raises(ConnectionFailedError) as info:
            run(SelfHostedClient(server.url).health())
        status = run(acheck_selfhosted(Settings(selfhosted_url=server.url)))
    assert_says_https(info.value, server.port)
    assert "speaks TLS" in str(info.value)
    assert status.state is ServerState.OFFLINE and status.reason == HTTPS_WORDS


def test_a_tls_alert_in_answer_to_plain_http_says_it_is_an_https_address():
    with stub_server(send_bytes(TLS_ALERT)) as server, pytest.raises(ConnectionFailedError) as info:
        run(SelfHostedClient(server.url).health())
    assert_says_https(info.value, server.port)
    assert "speaks TLS" in str(info.value)


def test_an_https_only_400_page_says_it_is_an_https_address():
    page = b"<html><center><h1>400 The plain HTTP request was sent to HTTPS port</h1></center>"
    https_only = answer("400 Bad Request", page, {"Content-Type": "text/html"})
    with stub_server(https_only) as server, pytest.raises(RequestRejectedError) as info:
        run(SelfHostedClient(server.url).health())
    assert_says_https(info.value, server.port)


def test_a_server_that_just_closes_is_not_called_an_https_server():
    closes = stub_server(lambda conn, head: None)  # reads the request, closes
    with closes as server, pytest.raises(ConnectionFailedError) as info:
        run(SelfHostedClient(server.url).health())
    assert info.value.reason == "connection dropped", str(info.value)
    assert "https" not in str(info.value)
    request, probe = server.heads  # the https:// probe came, and met no TLS
    assert request == b"GET /health HTTP/1.1" and probe.startswith(b"\x16\x03")


# -- 429 from a proxy in front of the server ----------------------------------------------------


def limited(retry_after: str | None = "7") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(429, headers=headers, text="<html>Too Many Requests</html>")


def test_a_429_is_a_rate_limit_error_carrying_the_wait_it_asks_for():
    in_30s = email.utils.formatdate(time.time() + 30, usegmt=True)
    with respx.mock:
        route = respx.get(f"{URL}/health")
        route.side_effect = [limited("7"), limited(in_30s), limited(None)]
        errors = []
        for _ in range(3):
            with pytest.raises(RateLimitError) as info:
                run(SelfHostedClient(URL).health())
            errors.append(info.value)
    assert errors[0].retry_after == 7.0 and errors[0].retryable
    assert "HTTP 429" in str(errors[0]) and "it asks to wait 7 s" in str(errors[0])
    assert 25 <= errors[1].retry_after <= 31
    assert errors[2].retry_after is None
    assert errors[0].reason == "rate limited"


class Waits:
    """Stands in for the batch's clock: records each wait, sleeps none."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def waits(monkeypatch) -> Waits:
    recorder = Waits()
    monkeypatch.setattr(batch_run, "_sleep", recorder)
    return recorder


def generated(request: httpx.Request) -> httpx.Response:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    return httpx.Response(200, json={"image": base64.b64encode(buf.getvalue()).decode(), "seed": 1})


def batch_over(tmp_path, answers: list[Any]) -> tuple[px.Batch, respx.Route]:
    settings = Settings(selfhosted_url=URL, archive_dir=tmp_path / "archive")
    with respx.mock(assert_all_called=False) as router:
        route = router.post(f"{URL}/generate").mock(side_effect=answers)
        done = run(px.arun_batch(["a", "b"], "animagine", settings=settings, progress=False))
    return done, route


def test_a_batch_waits_out_a_429_instead_of_failing_its_jobs(tmp_path, waits):
    done, route = batch_over(tmp_path, [limited("3"), limited("3"), generated, generated])
    assert done.ok and len(done.generations) == 2, done.failed
    assert route.call_count == 4
    assert waits.seconds == [3.0, 3.0]


def test_a_batch_gives_up_after_a_few_waits_and_never_waits_too_long(tmp_path, waits):
    retries = batch_run.RATE_LIMIT_RETRIES
    done, route = batch_over(tmp_path, [limited(None)] * (retries + 1) + [limited("3600")])
    assert len(done.failed) == 2 and not done.generations
    first, second = (f.error for f in done.failed)
    assert isinstance(first, RateLimitError) and f"tried {retries + 1} times" in str(first)
    assert isinstance(second, RateLimitError) and "3600 s" in str(second)
    assert route.call_count == retries + 2
    assert waits.seconds == [2.0, 4.0, 8.0]  # no Retry-After: 2, 4, 8 s; never the hour
