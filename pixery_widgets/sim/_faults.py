"""Injected faults: what can go wrong between a client and a GPU box, on demand.

A fault is armed per route ("/generate", or "*" for every route) and, optionally,
for the next N requests only. This module says what each fault is and how it
rewrites a JSON answer; ``_middleware`` puts it on the wire.

Faults that replace the answer (hang, html_500, status_*, huge_body) skip the
handler and the one-at-a-time lock, so a hung /generate does not block /health.
The others run the real handler first (under the lock), then damage its answer.
"""

from __future__ import annotations

import base64
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any


class FaultKind(str, Enum):
    """Every fault the simulator can inject (the value is the name used in specs)."""

    HANG = "hang"  # read the request, never answer
    SLOW_BYTES = "slow_bytes"  # the normal answer, one byte at a time
    RESET_MID_BODY = "reset_mid_body"  # headers and half the body, then the connection closes
    HTML_500 = "html_500"  # a proxy's HTML error page
    WRONG_CONTENT_TYPE = "wrong_content_type"  # the normal body labelled text/html
    TRUNCATED_JSON = "truncated_json"  # the first half of the normal JSON, complete HTTP message
    MISSING_FIELDS = "missing_fields"  # required keys dropped
    MISTYPED_FIELDS = "mistyped_fields"  # keys with values of the wrong type
    INVALID_BASE64 = "invalid_base64"  # "image" is not base64
    NOT_AN_IMAGE = "not_an_image"  # "image" is base64 of text
    DECOMPRESSION_BOMB = "decompression_bomb"  # "image" is a tiny PNG declaring 30000x30000
    HUGE_BODY = "huge_body"  # a 200 MB JSON answer, chunked, made lazily
    EXTRA_FIELDS = "extra_fields"  # unknown keys added
    UNKNOWN_MODEL = "unknown_model"  # "mystery-xl" appears in the model lists
    STATUS_400 = "status_400"
    STATUS_422 = "status_422"
    STATUS_503 = "status_503"


# Faults that rewrite the normal answer's JSON; the request is handled normally first.
JSON_REWRITES = {
    FaultKind.MISSING_FIELDS,
    FaultKind.MISTYPED_FIELDS,
    FaultKind.INVALID_BASE64,
    FaultKind.NOT_AN_IMAGE,
    FaultKind.DECOMPRESSION_BOMB,
    FaultKind.EXTRA_FIELDS,
    FaultKind.UNKNOWN_MODEL,
}

MYSTERY_MODEL = "mystery-xl"


@dataclass
class Fault:
    """One armed fault. ``times`` counts down per request; None means forever."""

    kind: FaultKind
    times: int | None = None
    delay: float = 0.02  # slow_bytes: seconds between bytes
    size: int = 200 * 1024 * 1024  # huge_body: bytes of padding

    def __post_init__(self) -> None:
        self.kind = fault_kind(self.kind)
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for forever)")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "times": self.times,
            "delay": self.delay,
            "size": self.size,
        }


def fault_kind(name: str) -> FaultKind:
    """The kind named, or a ValueError that lists the known kinds."""
    try:
        return FaultKind(name)
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"unknown fault kind {name!r}; known: {known}") from None


def normalize_route(route: str) -> str:
    """'generate', '/generate/' and '/generate' all name the same route."""
    route = route.strip()
    if route == "*":
        return route
    return "/" + route.strip("/")


def as_fault(value: Fault | str | dict[str, Any]) -> Fault:
    if isinstance(value, Fault):
        return value
    if isinstance(value, str):
        return Fault(fault_kind(value))
    return Fault(**value)


def normalize_faults(faults: dict[str, Any]) -> dict[str, Fault]:
    return {normalize_route(route): as_fault(value) for route, value in faults.items()}


def parse_fault_spec(spec: str) -> tuple[str, Fault]:
    """Parse the CLI form ``ROUTE=KIND[:N]``, e.g. ``/generate=html_500:2``."""
    route, sep, rest = spec.partition("=")
    if not sep or not route or not rest:
        raise ValueError(f"expected ROUTE=KIND[:N], got {spec!r}")
    kind, _, times = rest.partition(":")
    return normalize_route(route), Fault(fault_kind(kind), int(times) if times else None)


_take_lock = threading.Lock()


def take_fault(faults: dict[str, Any], path: str) -> Fault | None:
    """The fault armed for this path (or for "*"), counting one use of it."""
    with _take_lock:
        for route in (normalize_route(path), "*"):
            if route in faults:
                fault = faults[route] = as_fault(faults[route])
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        del faults[route]
                return fault
    return None


# --- what the faulty answers contain ------------------------------------------------

HTML_500_BODY = (
    b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def unknown_model_detail(name: str, available: Sequence[str]) -> str:
    """The server's 400 for a model it does not know (the handler and the fault share it)."""
    return f"Unknown model '{name}'. Available models: {', '.join(available)}"


def not_downloaded_detail(name: str) -> str:
    """The server's 503 for a model whose checkpoint is missing."""
    return (
        f"Model '{name}' is not downloaded on this server. "
        "Run download_models.py on the server to fetch its checkpoint."
    )


STATUS_DETAILS: dict[FaultKind, tuple[int, Any]] = {
    FaultKind.STATUS_400: (
        400,
        unknown_model_detail(MYSTERY_MODEL, ("animagine", "pony", "noobai")),
    ),
    FaultKind.STATUS_422: (
        422,
        [{"type": "missing", "loc": ["body", "prompt"], "msg": "Field required", "input": {}}],
    ),
    FaultKind.STATUS_503: (503, not_downloaded_detail("animagine")),
}

_MISSING: dict[str, tuple[str, ...]] = {
    "/health": ("status", "available_models"),
    "/models": ("models",),
    "/loras": ("loras",),
    "/switch-model": ("status", "model"),
    "/generate": ("image", "seed"),
}

_MISTYPED: dict[str, dict[str, Any]] = {
    "/health": {"available_models": "animagine", "idle_seconds": "abc", "ip_adapter_loaded": "yes"},
    "/models": {"models": ["animagine", "pony", "noobai"], "current": 42},
    "/loras": {"loras": "detail_tweaker"},
    "/switch-model": {"status": True, "model": 42},
    "/generate": {"seed": "abc", "parameters": "steps=28"},
}

_EXTRA = {"server_version": "9.9.9-sim", "x_debug": {"queue": 0, "worker": "gpu0"}, "warnings": []}

NOT_AN_IMAGE = b"This is not an image, only some text that happens to be valid base64.\n" * 4


@lru_cache(maxsize=1)
def decompression_bomb_png(side: int = 30000) -> bytes:
    """A valid 1-bit PNG of side x side zeros: about 110 kB on the wire, 900 Mpx decoded."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # 1 bit, greyscale
    packer = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)  # filter byte + packed pixels
    rows_per_step = 1000
    parts = [packer.compress(row * rows_per_step) for _ in range(side // rows_per_step)]
    parts.append(packer.compress(row * (side % rows_per_step)))
    parts.append(packer.flush())
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def rewrite_json(kind: FaultKind, route: str, data: Any) -> Any:
    """The answer's JSON as the fault would have it; non-objects pass unchanged."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if kind is FaultKind.MISSING_FIELDS:
        for key in _MISSING.get(route, tuple(data)):
            data.pop(key, None)
    elif kind is FaultKind.MISTYPED_FIELDS:
        data.update(_MISTYPED.get(route, {key: "abc" for key in data}))
    elif kind is FaultKind.EXTRA_FIELDS:
        data.update(_EXTRA)
        if isinstance(data.get("parameters"), dict):
            data["parameters"] = {**data["parameters"], "scheduler": "euler_a", "clip_skip": 2}
    elif kind is FaultKind.UNKNOWN_MODEL:
        if isinstance(data.get("available_models"), list):
            data["available_models"] = [*data["available_models"], MYSTERY_MODEL]
        if isinstance(data.get("models"), dict):
            data["models"] = {**data["models"], MYSTERY_MODEL: _mystery_entry()}
    elif "image" in data:
        data["image"] = _bad_image(kind)
    return data


def _mystery_entry() -> dict[str, Any]:
    return {
        "description": "An experimental checkpoint this client has never heard of",
        "downloaded": True,
        "loaded": False,
        "default_cfg": 6.0,
        "default_steps": 30,
    }


def _bad_image(kind: FaultKind) -> str:
    if kind is FaultKind.INVALID_BASE64:
        return "%%% this is not base64 %%%"
    if kind is FaultKind.NOT_AN_IMAGE:
        return base64.b64encode(NOT_AN_IMAGE).decode("ascii")
    return base64.b64encode(decompression_bomb_png()).decode("ascii")
