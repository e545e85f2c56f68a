"""fal.ai's queue API (docs/backends.md, "fal.ai").

Submit, poll the status URL with a growing interval, fetch the result, then
download the image from its own host without any credentials. Cancelling
the task cancels the queued request at fal (best effort), so an abandoned
request stops costing money.

Queue progress: ``FalProvider.generate(request, settings, on_status=fn)``
calls ``fn(FalQueueStatus(...))`` each time the state or the queue position
changes. It is a keyword with a default, so the common ``Provider`` call
works unchanged; nothing in the package passes it yet (the panel shows only
"Generating…" for a cloud model).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..core import schema
from ..core.catalog import CATALOG, ModelSpec
from ..core.config import Secret, Settings
from ..core.errors import (
    BadResponseError,
    ContentRefusedError,
    InvalidRequestError,
    PixeryError,
    ServerTimeoutError,
)
from ..core.types import Generation, GenerationRequest
from . import _cloud, _cloud_errors, _cloud_images, _cloud_send
from ._base import OnImage, send, within

__all__ = ["FAL", "IMAGE_SIZES", "FalProvider", "FalQueueStatus"]

log = logging.getLogger("pixery_widgets.providers")

FAL = _cloud.Service(
    name="fal",
    label="fal.ai",
    key_host="fal.run",
    header="Authorization",
    scheme="Key ",
    subdomains=True,
    # fal.ai's reliability page: "Failed requests that return 5xx status codes are not billed."
    unbilled_5xx=True,
)
QUEUE_URL = "https://queue.fal.run"
SUBMIT_TIMEOUT = 60.0
POLL_TIMEOUT = 20.0
CANCEL_TIMEOUT = 5.0
DOWNLOAD_TIMEOUT = 120.0

#: fal's ``image_size`` presets: (name, width, height), square first.
IMAGE_SIZES: tuple[tuple[str, int, int], ...] = (
    ("square_hd", 1024, 1024),
    ("portrait_4_3", 768, 1024),
    ("portrait_16_9", 576, 1024),
    ("landscape_4_3", 1024, 768),
    ("landscape_16_9", 1024, 576),
)
#: ``aspect_ratio`` values for models that take one (Imagen 4).
ASPECT_RATIOS: tuple[tuple[str, int, int], ...] = (
    ("1:1", 1, 1),
    ("16:9", 16, 9),
    ("9:16", 9, 16),
    ("4:3", 4, 3),
    ("3:4", 3, 4),
)

#: z-image image-to-image: how far the result may move from the reference.
DEFAULT_STRENGTH = 0.6


@dataclass(frozen=True)
class FalQueueStatus:
    """Where a queued fal request is, for a progress line."""

    request_id: str
    #: "IN_QUEUE", "IN_PROGRESS" or "COMPLETED" (fal's own words).
    state: str
    queue_position: int | None
    elapsed_s: float

    def describe(self) -> str:
        if self.state == "IN_QUEUE":
            pos = f" (position {self.queue_position})" if self.queue_position is not None else ""
            return f"queued at fal.ai{pos}"
        if self.state == "IN_PROGRESS":
            return "fal.ai is drawing"
        return self.state.lower().replace("_", " ")


OnStatus = Callable[[FalQueueStatus], object]

#: Cancel requests still running after their task gave up waiting for them.
_background: set[asyncio.Task[None]] = set()


def _app_id(api_id: str) -> str:
    """The queue's app id (owner/alias): fal builds status URLs from it, not the full path."""
    return "/".join(api_id.split("/")[:2])


class FalProvider(_cloud.CloudProvider):
    """fal's queue: submit, poll, fetch, download; one reference for z-image."""

    name: ClassVar[str] = "fal"

    #: Polling: first wait, growth factor, longest wait (seconds).
    poll_start_s: float = 0.25
    poll_factor: float = 1.5
    poll_max_s: float = 2.0
    #: Give up (and cancel at fal) after waiting this long for a result.
    max_wait_s: float = 900.0

    def __init__(
        self,
        *,
        retry: _cloud_send.RetryPolicy | None = None,
        max_wait_s: float | None = None,
    ) -> None:
        super().__init__(retry=retry)
        if max_wait_s is not None:
            self.max_wait_s = max_wait_s

    def validate(self, request: GenerationRequest) -> None:
        schema.check_names(request.extra, CATALOG[request.model], keywords=())
        try:
            json.dumps(request.extra)
        except (TypeError, ValueError):
            raise InvalidRequestError(
                "fal.ai options must be plain JSON values (text, numbers, lists)."
            ) from None
        strength = request.extra.get("strength")
        if strength is not None and (
            isinstance(strength, bool)
            or not isinstance(strength, (int, float))
            or not 0.0 <= strength <= 1.0
        ):
            raise InvalidRequestError(f"strength must be between 0 and 1, got {strength!r}.")

    def build_body(
        self, request: GenerationRequest, spec: ModelSpec, reference: tuple[str, str] | None
    ) -> tuple[str, dict[str, Any]]:
        """(the model path to submit to, the JSON body)."""
        body: dict[str, Any] = {"prompt": request.prompt}
        if spec.size_field == "aspect_ratio":
            body["aspect_ratio"] = _cloud_images.nearest(
                request.width, request.height, ASPECT_RATIOS
            )
        else:
            body["image_size"] = _cloud_images.nearest(request.width, request.height, IMAGE_SIZES)
        if request.seed is not None:
            body["seed"] = request.seed
        extra = dict(request.extra)
        strength = extra.pop("strength", DEFAULT_STRENGTH)
        body.update({k: v for k, v in extra.items() if k != "prompt"})
        api_id = spec.api_id
        if reference is not None and spec.reference_api_id:
            mime, data = reference
            api_id = spec.reference_api_id
            body["image_url"] = f"data:{mime};base64,{data}"
            body["strength"] = strength
        return api_id, body

    async def generate(
        self,
        request: GenerationRequest,
        settings: Settings,
        *,
        on_status: OnStatus | None = None,
        on_image: OnImage | None = None,  # not called: the caller archives after the return
    ) -> Generation:
        key = _cloud.require_key(settings, FAL)
        started = time.perf_counter()
        spec = CATALOG[request.model]
        reference = (
            await asyncio.to_thread(_cloud_images.encode_reference, request.references[0])
            if request.references
            else None
        )
        api_id, body = self.build_body(request, spec, reference)
        submitted = await self._call(
            "POST", f"{QUEUE_URL}/{api_id}", settings, key, body=body, timeout=SUBMIT_TIMEOUT
        )
        if not isinstance(submitted, dict) or not isinstance(submitted.get("request_id"), str):
            raise BadResponseError(
                "fal.ai's answer to the submission has no request_id.", provider=self.name
            )
        request_id = submitted["request_id"]
        base = f"{QUEUE_URL}/{_app_id(api_id)}/requests/{request_id}"

        def url(field: str, default: str) -> str:
            value = submitted.get(field)
            return value if isinstance(value, str) and value else default

        status_url = url("status_url", f"{base}/status")
        response_url = url("response_url", base)
        cancel_url = url("cancel_url", f"{base}/cancel")
        try:
            await self._wait(request_id, status_url, settings, key, started, on_status)
        except BaseException:
            # Cancelled, timed out or failed while waiting: nobody will collect
            # this image, so stop fal from drawing (and charging for) it.
            await self._cancel(cancel_url, settings, key)
            raise
        result = await self._call("GET", response_url, settings, key, timeout=POLL_TIMEOUT)
        return await self._finish(request, spec, api_id, body, result, settings, started)

    async def _call(
        self,
        method: str,
        url: str,
        settings: Settings,
        key: Secret,
        *,
        timeout: float,
        body: Any = None,
    ) -> Any:
        return await _cloud_send.call_json(
            FAL,
            method,
            url,
            settings=settings,
            key=key,
            timeout=timeout,
            json_body=body,
            policy=self.retry,
        )

    async def _wait(
        self,
        request_id: str,
        status_url: str,
        settings: Settings,
        key: Secret,
        started: float,
        on_status: OnStatus | None,
    ) -> None:
        """Poll until COMPLETED, waiting a little longer each time (capped)."""
        policy = self.retry or _cloud_send.RETRY
        interval = self.poll_start_s
        last: tuple[str, int | None] | None = None
        while True:
            data = await self._call("GET", status_url, settings, key, timeout=POLL_TIMEOUT)
            state = data.get("status") if isinstance(data, dict) else None
            if not isinstance(state, str):
                raise BadResponseError(
                    "fal.ai's status answer has no 'status'.", provider=self.name
                )
            position = data.get("queue_position")
            position = position if isinstance(position, int) else None
            if on_status is not None and (state, position) != last:
                last = (state, position)
                self._report(
                    on_status,
                    FalQueueStatus(request_id, state, position, time.perf_counter() - started),
                )
            if state == "COMPLETED":
                return
            if time.perf_counter() - started > self.max_wait_s:
                raise ServerTimeoutError(
                    f"fal.ai did not finish within {self.max_wait_s:.0f} s "
                    f"(last status {state}); the request was cancelled.",
                    provider=self.name,
                    reason="timed out",
                )
            await policy.sleep(interval)
            interval = min(self.poll_max_s, interval * self.poll_factor)

    @staticmethod
    def _report(on_status: OnStatus, status: FalQueueStatus) -> None:
        # A broken progress display must not lose an image that is being paid for.
        try:
            on_status(status)
        except Exception:
            log.exception("fal.ai on_status callback failed")

    async def _cancel(self, cancel_url: str, settings: Settings, key: Secret) -> None:
        """PUT cancel_url, best effort: short, shielded, never raising."""
        try:
            headers = FAL.auth_headers(key, cancel_url)
        except PixeryError:
            return

        async def put() -> None:
            try:
                await send(
                    "PUT",
                    cancel_url,
                    where="fal.ai",
                    timeout=CANCEL_TIMEOUT,
                    headers=headers,
                    limit=64 * 1024,
                )
            except PixeryError as exc:
                log.info(
                    "fal.ai: cancelling the request failed: %s",
                    _cloud_errors.scrub(exc.message, settings),
                )

        task = asyncio.ensure_future(put())
        _background.add(task)
        task.add_done_callback(_background.discard)
        # The PUT finishes in the background if this wait ends early; a second
        # cancellation (the user again) is not swallowed here.
        with contextlib.suppress(asyncio.TimeoutError):
            await within(CANCEL_TIMEOUT + 1, asyncio.shield(task))

    async def _finish(
        self,
        request: GenerationRequest,
        spec: ModelSpec,
        api_id: str,
        body: dict[str, Any],
        result: Any,
        settings: Settings,
        started: float,
    ) -> Generation:
        images = result.get("images") if isinstance(result, dict) else None
        first = images[0] if isinstance(images, list) and images else None
        url = first.get("url") if isinstance(first, dict) else None
        if not isinstance(url, str) or not url:
            raise ContentRefusedError(
                "fal.ai finished without an image (its 'images' list is empty).",
                provider=self.name,
                status_code=200,
                reason="no image",
            )
        image = await _cloud_images.fetch_image(
            FAL, url, settings=settings, timeout=DOWNLOAD_TIMEOUT
        )
        seed = result.get("seed")
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else request.seed
        extra: dict[str, Any] = {"api_id": api_id, "seed": seed}  # the endpoint actually used
        if isinstance(result.get("has_nsfw_concepts"), list):
            extra["has_nsfw_concepts"] = result["has_nsfw_concepts"]
        return _cloud_images.finished(
            FAL,
            request,
            spec,
            image,
            started,
            sent={k: v for k, v in body.items() if k != "image_url"},
            extra=extra,
            seed=seed,
        )
