"""What a hostile or broken network can throw at the client, and what comes out.

Whatever httpx, idna or the socket layer raises while the self-hosted server is
checked or asked for an image, a ``PixeryError`` with a sentence comes out (a
status check reports offline instead); a URL's query is kept on every route and
masked wherever the URL is shown; an oversized reference is called too large.
RELIABILITY.md, "Hostile networks", is the table of these outcomes.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import gzip
import io
import json
import logging
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import idna
import pytest
import respx
from _secrets_plugin import SENTINELS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixery_widgets import agenerate
from pixery_widgets.core.config import Settings, load_settings, mask_url
from pixery_widgets.core.errors import (
    BadResponseError,
    ConfigurationError,
    InvalidRequestError,
    PixeryError,
    ServerError,
)
from pixery_widgets.core.images import MAX_IMAGE_PIXELS
from pixery_widgets.core.types import SelfHostedStatus, ServerState
from pixery_widgets.providers.selfhosted import SelfHostedClient
from pixery_widgets.providers.status import acheck_selfhosted
from pixery_widgets.session.validation import as_references, build_request
from pixery_widgets.sim._faults import decompression_bomb_png

T = TypeVar("T")
URL = "http://203.0.113.7:8000"
_LOOP = asyncio.new_event_loop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """One loop for the module (hypothesis runs hundreds of examples)."""
    return _LOOP.run_until_complete(coro)


def png(size: tuple[int, int] = (16, 12), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


HEALTH = {"status": "healthy", "current_model": "animagine", "available_models": ["animagine"]}
ANSWERS = {
    "/health": HEALTH,
    "/models": {"models": {"animagine": {"downloaded": True}}, "current": "animagine"},
    "/loras": {"loras": ["detail_tweaker"]},
    "/switch-model": {"status": "ok", "model": "animagine"},
    "/generate": {"image": base64.b64encode(png()).decode(), "seed": 1, "parameters": {}},
}


def route_answer(request: httpx.Request) -> httpx.Response:
    """The server's answer for whichever route was asked (any prefix before it)."""
    route = next((r for r in ANSWERS if request.url.path.endswith(r)), None)
    return httpx.Response(200, json=ANSWERS[route]) if route else httpx.Response(404)


def healthy_server(**failing: BaseException) -> respx.MockRouter:
    """A respx router that answers every request like a healthy server (no network),
    except the routes named (``models=exc``), which raise."""
    router = respx.mock(assert_all_called=False, assert_all_mocked=True)
    for name, exc in failing.items():  # routes are matched in order: these first
        router.route(path__regex=rf"/{name}$").mock(side_effect=exc)
    router.route().mock(side_effect=route_answer)
    return router


# -- 4. nothing but package errors escape ----------------------------------------------------


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _instance(cls: type[BaseException]) -> BaseException:
    request = httpx.Request("GET", f"{URL}/health")
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("bad status", request=request, response=httpx.Response(500, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls("went wrong", request=request)
    return cls("went wrong")


_CLASSES = {
    httpx.HTTPError,
    *_subclasses(httpx.HTTPError),
    httpx.InvalidURL,
    httpx.CookieConflict,
    idna.IDNAError,
    UnicodeError,
    ValueError,
    OverflowError,  # what connect() raises for a port above 65535
}
#: Every exception httpx and idna can raise on the way, and a few from beneath them.
TRANSPORT_EXCEPTIONS = [_instance(c) for c in sorted(_CLASSES, key=lambda c: c.__qualname__)]
_GROUP = getattr(builtins, "ExceptionGroup", None)  # Python 3.11+
if _GROUP is not None:  # anyio wraps a socket failure in a group (seen for a port of 99999)
    TRANSPORT_EXCEPTIONS.append(_GROUP("connect", [OverflowError("port must be 0-65535")]))
IDS = [type(e).__qualname__ for e in TRANSPORT_EXCEPTIONS]

CLIENT_CALLS = {
    "health": lambda c: c.health(),
    "models": lambda c: c.models(),
    "loras": lambda c: c.loras(),
    "generate": lambda c: c.generate(build_request("a lighthouse", "animagine", seed=1)),
}


def assert_a_sentence(error: PixeryError) -> None:
    assert isinstance(error, PixeryError)
    starts = error.message[:1].isupper() or error.message.startswith("fal.ai")  # its own name
    assert starts and error.message.endswith("."), error.message
    assert "Traceback" not in error.message


@pytest.mark.parametrize("exc", TRANSPORT_EXCEPTIONS, ids=IDS)
@pytest.mark.parametrize("call", sorted(CLIENT_CALLS))
def test_every_exception_from_the_transport_becomes_a_package_error(call, exc):
    with respx.mock(assert_all_called=False) as router:
        router.route().mock(side_effect=exc)
        with pytest.raises(PixeryError) as info:
            run(CLIENT_CALLS[call](SelfHostedClient(URL)))
    assert_a_sentence(info.value)


@pytest.mark.parametrize("exc", TRANSPORT_EXCEPTIONS, ids=IDS)
def test_a_status_check_never_raises_whatever_the_transport_raises(exc):
    with respx.mock(assert_all_called=False) as router:
        router.route().mock(side_effect=exc)
        status = run(acheck_selfhosted(Settings(selfhosted_url=URL)))
    assert status.state is ServerState.OFFLINE and status.reason, status


@pytest.mark.parametrize("detail_route", ["models", "loras"])
@pytest.mark.parametrize("exc", TRANSPORT_EXCEPTIONS, ids=IDS)
def test_a_detail_route_failing_in_any_way_leaves_the_server_healthy(exc, detail_route):
    with healthy_server(**{detail_route: exc}) as router:
        status = run(acheck_selfhosted(Settings(selfhosted_url=URL)))
        asked = {call.request.url.path for call in router.calls}
    assert asked == {"/health", "/models", "/loras"}
    assert status.state is ServerState.HEALTHY, status
    assert (status.models is None) == (detail_route == "models")
    assert (status.loras == ()) == (detail_route == "loras")


def corrupt_gzip(data: Any) -> bytes:
    packed = bytearray(gzip.compress(json.dumps(data).encode()))
    for i in range(12, len(packed) - 8):  # the deflate stream, not the header or trailer
        packed[i] ^= 0x5A
    return bytes(packed)


def test_a_corrupt_gzip_answer_is_a_bad_answer_not_an_httpx_error():
    gz = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    with respx.mock:
        # A stream, not content=: httpx would decode content while building the Response.
        respx.get(f"{URL}/health").mock(
            return_value=httpx.Response(
                200, headers=gz, stream=httpx.ByteStream(corrupt_gzip(HEALTH))
            )
        )
        respx.post(f"{URL}/generate").mock(
            return_value=httpx.Response(
                200, headers=gz, stream=httpx.ByteStream(corrupt_gzip(ANSWERS["/generate"]))
            )
        )
        status = run(acheck_selfhosted(Settings(selfhosted_url=URL)))
        with pytest.raises(BadResponseError, match="could not be decompressed") as info:
            run(agenerate("a lighthouse", "animagine", settings=Settings(selfhosted_url=URL)))
    assert status.state is ServerState.OFFLINE
    assert status.reason == "bad answer (corrupt compression)"
    assert_a_sentence(info.value)


def test_a_malformed_punycode_host_is_refused_by_the_settings_and_never_raises(tmp_path):
    bad = "http://xn--zz:8000"
    loaded = load_settings({"SELFHOSTED_API_URL": bad}, cwd=tmp_path, home=tmp_path)
    assert loaded.selfhosted_url is None
    assert "not a valid internet name" in loaded.url_error
    with pytest.raises(ConfigurationError, match="not a valid internet name"):
        load_settings({"SELFHOSTED_API_URL": bad}, cwd=tmp_path, home=tmp_path, strict=True)
    # Settings made by hand skip load_settings: still no idna error out of either path.
    by_hand = Settings(selfhosted_url=bad)
    status = run(acheck_selfhosted(by_hand))
    assert status.state is ServerState.OFFLINE and "internet name" in status.reason
    with pytest.raises(ConfigurationError):
        run(agenerate("a lighthouse", "animagine", settings=by_hand))


_HOST_PARTS = st.sampled_from(
    ["xn--", "xn--zz", "a", "-", ".", "..", "é", "ß", "[", "]", ":", "::1", "127.0.0.1", "%",
     "@", " ", "\u2100", "\ufeff", "0x7f", "999.1.1.1", "a" * 64, "localhost", "例え"]
)  # fmt: skip
hosts = st.lists(st.one_of(_HOST_PARTS, st.text(max_size=4)), min_size=0, max_size=4).map("".join)
ports = st.one_of(
    st.just(""),
    st.integers(-5, 70000).map(lambda p: f":{p}"),
    st.text(max_size=3).map(":{}".format),
)
tails = st.one_of(st.just(""), st.text(max_size=12).map("/{}".format))
queries = st.one_of(st.just(""), st.text(max_size=12).map("?{}".format))
urls = st.builds(
    "{}{}{}{}{}{}".format,
    st.sampled_from(["http://", "https://", "ftp://", "", "http:/", "HTTP://"]),
    st.sampled_from(["", "user:pw@", "@", "u@"]),
    hosts,
    ports,
    tails,
    queries,
)


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@example("http://xn--zz:8000")
@example("http://[::1")
@example("http://127.0.0.1:99999")
@example("http://h:8000/p?token=abc#frag")
@given(urls)
def test_any_url_in_the_setting_gives_a_status_or_a_package_error_never_anything_else(raw):
    empty = Path("/nonexistent-pixery-home")
    loaded = load_settings({"SELFHOSTED_API_URL": raw}, cwd=empty, home=empty)
    assert (loaded.selfhosted_url is None) != (loaded.url_error is None) or not raw.strip()
    for config in (loaded, Settings(selfhosted_url=raw)):  # as read, and as made by hand
        with healthy_server():
            status = run(acheck_selfhosted(config))
            assert isinstance(status, SelfHostedStatus)
            try:
                run(agenerate("a lighthouse", "animagine", settings=config, archive=False))
            except PixeryError as exc:
                assert_a_sentence(exc)


# -- 6. a query in the URL is kept on every route, and masked wherever it is shown ----------

TOKEN = SENTINELS["FAL_KEY"]  # the secrets plugin fails the session if it shows up anywhere
PROXIED = f"https://gpu.example.net/proxy/8000?token={TOKEN}"


def test_the_query_survives_the_settings_and_is_masked_in_display(tmp_path):
    written = PROXIED.replace("/8000?", "/8000/?")  # the slash before the query is dropped
    loaded = load_settings({"SELFHOSTED_API_URL": written}, cwd=tmp_path, home=tmp_path)
    assert loaded.selfhosted_url == PROXIED
    assert loaded.display_url == "https://gpu.example.net/proxy/8000?token=***"
    assert TOKEN not in repr(loaded)
    assert mask_url("see https://h/p?a=1&b&c=") == "see https://h/p?a=***&***&c=***"


def test_every_route_carries_the_query_and_no_message_or_log_shows_it(caplog):
    caplog.set_level(logging.DEBUG)
    client = SelfHostedClient(PROXIED)
    with healthy_server() as router:
        run(client.health())
        run(client.models())
        run(client.loras())
        run(client.switch_model("animagine"))
        run(client.generate(build_request("a lighthouse", "animagine", seed=1)))
        status = run(acheck_selfhosted(Settings(selfhosted_url=PROXIED)))
        sent = [(c.request.url.path, c.request.url.query) for c in router.calls]
    assert status.state is ServerState.HEALTHY
    assert {path for path, _ in sent} == {
        f"/proxy/8000{r}" for r in ("/health", "/models", "/loras", "/switch-model", "/generate")
    }
    assert all(query == f"token={TOKEN}".encode() for _, query in sent), sent
    shown = [repr(client), repr(status), status.summary(), caplog.text]
    assert all(TOKEN not in text for text in shown), shown
    assert "token=***" in caplog.text  # httpx's own request lines, masked


def test_an_error_answer_names_the_url_with_the_query_masked():
    with respx.mock:
        respx.get(f"{PROXIED.split('?')[0]}/health").mock(
            return_value=httpx.Response(403, text="<html>Forbidden</html>")
        )
        with pytest.raises(ServerError, match="HTTP 403") as info:
            run(SelfHostedClient(PROXIED).health())
    assert "token=***" in str(info.value) and TOKEN not in str(info.value)


# -- 8. an oversized reference says so, with the limit ----------------------------------------


def test_an_oversized_reference_is_called_too_large_with_the_limit():
    big = png((9000, 9000), mode="1")  # 81 megapixels, a small file
    assert MAX_IMAGE_PIXELS < 9000 * 9000
    with pytest.raises(InvalidRequestError) as info:
        as_references(big)
    message = str(info.value)
    assert "too large" in message and "9000×9000" in message, message
    assert "64 megapixels" in message and "not a readable image" not in message
    with pytest.raises(InvalidRequestError, match=r"too large.*64 megapixels"):
        as_references(decompression_bomb_png())  # too large for Pillow even to open
    with pytest.raises(InvalidRequestError, match="not a readable image"):
        as_references(b"this is not an image at all")
