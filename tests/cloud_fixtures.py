"""The cloud providers' documented answers (docs/backends.md, "Cloud providers") as
builders, and the fixtures every cloud test uses: sentinel keys, a respx router that
fails any unmocked request, a recording sleep, and leak checks on every request, log
record and error.

Test modules take the fixtures with ``from cloud_fixtures import *`` (``__all__`` is
just the fixtures) and import helpers by name.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import traceback
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import respx
from PIL import Image

from pixery_widgets.core.config import Settings, load_settings
from pixery_widgets.core.types import Generation
from pixery_widgets.providers import _cloud_send

#: The fixtures, for ``from cloud_fixtures import *``.
__all__ = ["mock", "no_keys", "settings", "sleeps"]

T = TypeVar("T")

MARK = "SENTINEL"
KEYS = {
    "gemini": "sk-SENTINEL-gemini-0123456789abcdef",
    "openai": "sk-SENTINEL-openai-0123456789abcdef",
    "fal": "sk-SENTINEL-fal-0123456789abcdef",
}
ENV = {"GEMINI_API_KEY": KEYS["gemini"], "OPENAI_API_KEY": KEYS["openai"], "FAL_KEY": KEYS["fal"]}

GEMINI_BASE = "https://generativelanguage.googleapis.com/v1beta/models"
OPENAI_URL = "https://api.openai.com/v1/images/generations"
FAL_QUEUE = "https://queue.fal.run"
FAL_MEDIA = "https://v3.fal.media/files/rabbit/out.png"

#: host → (the one auth header it may receive, its exact value)
_EXPECTED_AUTH = {
    "generativelanguage.googleapis.com": ("x-goog-api-key", KEYS["gemini"]),
    "api.openai.com": ("authorization", "Bearer " + KEYS["openai"]),
    "queue.fal.run": ("authorization", "Key " + KEYS["fal"]),
}
_AUTH_HEADERS = ("authorization", "x-goog-api-key", "x-api-key", "api-key")


# -- images ------------------------------------------------------------------------------


def image_bytes(width: int = 64, height: int = 48, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buf, format=fmt)
    return buf.getvalue()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


PNG = image_bytes()
PNG_B64 = b64(PNG)
NOT_AN_IMAGE_B64 = b64(b"hello, this is text and not a picture")


# -- Gemini ------------------------------------------------------------------------------


def gemini_url(api_id: str = "gemini-2.5-flash-image") -> str:
    return f"{GEMINI_BASE}/{api_id}:generateContent"


def gemini_usage(prompt: int = 10, image: int = 1290, text: int = 0) -> dict[str, Any]:
    details = [{"modality": "IMAGE", "tokenCount": image}]
    if text:
        details.append({"modality": "TEXT", "tokenCount": text})
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": image + text,
        "totalTokenCount": prompt + image + text,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        "candidatesTokensDetails": details,
    }


def gemini_image(
    data: str = PNG_B64,
    *,
    text: str | None = None,
    snake: bool = False,
    usage: dict[str, Any] | None = None,
    mime: str = "image/png",
) -> dict[str, Any]:
    """A 200 with an image part (after an optional text part)."""
    parts: list[dict[str, Any]] = []
    if text is not None:
        parts.append({"text": text})
    if snake:
        parts.append({"inline_data": {"mime_type": mime, "data": data}})
    else:
        parts.append({"inlineData": {"mimeType": mime, "data": data}})
    answer: dict[str, Any] = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
        "modelVersion": "gemini-2.5-flash-image",
    }
    if usage is not None:
        answer["usageMetadata"] = usage
    return answer


def gemini_refusal(
    *, text: str | None = None, finish_reason: str | None = None, block_reason: str | None = None
) -> dict[str, Any]:
    """A 200 without an image part: a refusal or a safety block."""
    answer: dict[str, Any] = {"usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}
    if text is not None or finish_reason is not None:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": []}}
        if text is not None:
            candidate["content"]["parts"].append({"text": text})
        if finish_reason is not None:
            candidate["finishReason"] = finish_reason
        answer["candidates"] = [candidate]
    if block_reason is not None:
        answer["promptFeedback"] = {"blockReason": block_reason}
    return answer


def gemini_error(
    code: int, message: str, status: str = "INVALID_ARGUMENT", *, details: list[Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


# -- OpenAI ------------------------------------------------------------------------------


def openai_image(
    data: str = PNG_B64, *, revised_prompt: str | None = None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"b64_json": data}
    if revised_prompt is not None:
        item["revised_prompt"] = revised_prompt
    answer: dict[str, Any] = {"created": 1_760_000_000, "data": [item]}
    if usage is not None:
        answer["usage"] = usage
    return answer


def openai_usage(text_in: int = 20, image_in: int = 0, out: int = 1056) -> dict[str, Any]:
    return {
        "total_tokens": text_in + image_in + out,
        "input_tokens": text_in + image_in,
        "output_tokens": out,
        "input_tokens_details": {"text_tokens": text_in, "image_tokens": image_in},
    }


def openai_error(
    message: str, type_: str = "invalid_request_error", code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


# -- fal ---------------------------------------------------------------------------------


def fal_urls(api_id: str, request_id: str = "req-0001") -> dict[str, str]:
    app = "/".join(api_id.split("/")[:2])
    base = f"{FAL_QUEUE}/{app}/requests/{request_id}"
    return {
        "status_url": f"{base}/status",
        "response_url": base,
        "cancel_url": f"{base}/cancel",
    }


def fal_submit(api_id: str, request_id: str = "req-0001") -> dict[str, Any]:
    return {
        "status": "IN_QUEUE",
        "request_id": request_id,
        "queue_position": 0,
        **fal_urls(api_id, request_id),
    }


def fal_status(status: str, queue_position: int | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": status}
    if queue_position is not None:
        answer["queue_position"] = queue_position
    return answer


def fal_result(
    url: str = FAL_MEDIA, *, seed: int | None = 424242, width: int = 64, height: int = 48
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "images": [{"url": url, "width": width, "height": height, "content_type": "image/png"}],
        "timings": {"inference": 0.4},
        "has_nsfw_concepts": [False],
        "prompt": "ignored",
    }
    if seed is not None:
        answer["seed"] = seed
    return answer


def fal_error(detail: Any) -> dict[str, Any]:
    return {"detail": detail}


def mock_fal_success(router: respx.MockRouter, api_id: str, *, result: Any = None) -> None:
    """Every route after the submission: COMPLETED, the result, the image download."""
    urls = fal_urls(api_id)
    router.get(urls["status_url"]).mock(
        return_value=httpx.Response(200, json=fal_status("COMPLETED"))
    )
    router.get(urls["response_url"]).mock(
        return_value=httpx.Response(200, json=result if result is not None else fal_result())
    )
    router.get(FAL_MEDIA).mock(
        return_value=httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
    )


# -- leak checks -------------------------------------------------------------------------


def assert_clean(text: object, *, what: str = "text") -> None:
    """No key, and no partly masked echo of one, in ``text``."""
    s = text if isinstance(text, str) else repr(text)
    assert MARK not in s, f"a key leaked into {what}: {s!r}"
    assert "sk-SENTI" not in s, f"part of a key leaked into {what}: {s!r}"


def assert_exception_clean(exc: BaseException) -> None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        assert_clean(str(current), what="an exception message")
        assert_clean(repr(current), what="an exception repr")
        assert_clean(repr(current.args), what="exception args")
        for attr in ("message", "detail", "reason"):
            assert_clean(repr(getattr(current, attr, None)), what=f"exception .{attr}")
        current = current.__cause__ or current.__context__
    assert_clean("".join(traceback.format_exception(exc)), what="a traceback")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` that checks the outcome (result or exception) for leaked keys."""
    try:
        result = asyncio.run(coro)
    except BaseException as exc:
        assert_exception_clean(exc)
        raise
    if isinstance(result, Generation):
        assert_clean(repr(result), what="repr(generation)")
        assert_clean(json.dumps(result.params, default=str), what="generation params")
    return result


def check_request_hygiene(request: httpx.Request) -> None:
    """Each request carries its own host's key header, exactly, and nothing else secret."""
    host = request.url.host
    expected = _EXPECTED_AUTH.get(host)
    for name in _AUTH_HEADERS:
        value = request.headers.get(name)
        if expected is not None and name == expected[0]:
            assert value == expected[1], f"{host} got {name}={value!r}"
        else:
            assert value is None, f"{host} must not receive a {name} header"
    for name, value in request.headers.items():
        if expected is None or name.lower() != expected[0]:
            assert_clean(value, what=f"header {name} to {host}")
    assert_clean(str(request.url), what="a request URL")
    assert MARK.encode() not in request.content, f"a key leaked into the body sent to {host}"


# -- fixtures ----------------------------------------------------------------------------


class RecordingSleep:
    """Stands in for ``asyncio.sleep``: records each delay and only yields to the loop."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def hermetic_settings(tmp_path: Path, env: dict[str, str]) -> Settings:
    """Settings from ``env`` only: no real ~/.env, and the archive inside ``tmp_path``."""
    archive = {"PIXERY_ARCHIVE_DIR": str(tmp_path / "archive")}
    return load_settings({**archive, **env}, cwd=tmp_path, home=tmp_path)


def assert_files_clean(root: Path) -> None:
    """No key in any file under ``root`` (the archive: images, index, sidecars)."""
    for path in root.rglob("*") if root.exists() else ():
        if path.is_file():
            data = path.read_bytes()
            assert MARK.encode() not in data and b"sk-SENTI" not in data, (
                f"a key leaked into {path}"
            )


@pytest.fixture
def settings(tmp_path) -> Settings:
    """All three keys (sentinels)."""
    return hermetic_settings(tmp_path, ENV)


@pytest.fixture
def no_keys(tmp_path) -> Settings:
    return hermetic_settings(tmp_path, {})


@pytest.fixture(autouse=True)
def sleeps(monkeypatch) -> RecordingSleep:
    """Every retry and poll wait goes here instead of the clock."""
    recorder = RecordingSleep()
    monkeypatch.setattr(_cloud_send, "RETRY", _cloud_send.RetryPolicy(jitter=0.0, sleep=recorder))
    return recorder


@pytest.fixture(autouse=True)
def mock(caplog, settings):
    """A respx router refusing any unmocked request; checks every request and log afterwards."""
    caplog.set_level(logging.DEBUG)
    assert_clean(repr(settings), what="repr(settings)")
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router
        # Inside the block: respx forgets its calls when the mock stops.
        calls = list(router.calls)
    for call in calls:
        check_request_hygiene(call.request)
    assert_files_clean(settings.archive_dir)
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    for record in records:
        assert_clean(record.getMessage(), what="a log record")
        if record.exc_info:
            assert_clean(
                "".join(traceback.format_exception(*record.exc_info)), what="a logged traceback"
            )
