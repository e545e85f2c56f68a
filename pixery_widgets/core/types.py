"""The values that cross layers: a request, a generation, a server status."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import schema

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DEFAULT_IP_ADAPTER_SCALE",
    "DEFAULT_LORA_SCALE",
    "Generation",
    "GenerationRequest",
    "HealthInfo",
    "LocalModelInfo",
    "SelfHostedStatus",
    "ServerState",
    "caption_line",
    "seed_words",
]


#: Defaults of a request's IP-Adapter and LoRA strengths (the server's own; from the schema).
DEFAULT_IP_ADAPTER_SCALE: float = schema.field("ip_adapter_scale").default
DEFAULT_LORA_SCALE: float = schema.field("lora_scale").default


def seed_words(seed: int | None) -> str:
    """``"seed 7"``, or ``"random seed"`` when the back end chose one and did not say."""
    return f"seed {seed}" if seed is not None else "random seed"


def caption_line(model: str, seed: int | None, *details: str) -> str:
    """An image's caption: ``animagine · seed 7 · 1024×1024 · …`` (empty details left out).

    Every caption (the panel's, a batch's grid, a job's label) is worded here.
    """
    return " · ".join([model, seed_words(seed), *(d for d in details if d)])


@dataclass(frozen=True)
class GenerationRequest:
    """One image to make, validated and with the model resolved to its canonical id.

    Its fields are the request schema's (``core/schema.py``; a test keeps them equal).
    ``references`` holds raw image bytes (PNG/JPEG), already read from a path or
    PIL image; each provider encodes them as its API wants.
    """

    prompt: str
    model: str
    provider: str
    negative_prompt: str | None = None
    width: int = 1024
    height: int = 1024
    steps: int | None = None
    cfg_scale: float | None = None
    seed: int | None = None
    references: tuple[bytes, ...] = ()
    ip_adapter_scale: float = DEFAULT_IP_ADAPTER_SCALE
    lora: str | None = None
    lora_scale: float = DEFAULT_LORA_SCALE
    #: Provider options passed through (``schema.OPTIONS``, e.g. OpenAI ``quality``).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reference_hash(self) -> str | None:
        """A short digest of the reference images, for the archive's index."""
        if not self.references:
            return None
        digest = hashlib.sha256()
        for ref in self.references:
            digest.update(hashlib.sha256(ref).digest())
        return digest.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """The request as plain JSON-able values: the schema's fields (references as their
        hash; a field that needs another, e.g. ``lora_scale``, as None without it)."""
        out: dict[str, Any] = {"model": self.model, "provider": self.provider}
        for f in schema.FIELDS:
            needed = schema.field(f.needs).attribute if f.needs else None
            if f.attribute == "references":
                out["reference_hash"] = self.reference_hash
            elif needed is not None and not getattr(self, needed):
                out[f.name] = None
            else:
                out[f.name] = getattr(self, f.attribute)
        if self.extra:
            out["extra"] = self.extra
        return out


class Generation:
    """An image that arrived, with everything needed to reproduce it.

    The PNG bytes are kept exactly as received; the PIL image is decoded on
    first access so that receiving stays cheap.
    """

    def __init__(
        self,
        *,
        png_bytes: bytes,
        seed: int | None,
        model: str,
        provider: str,
        params: dict[str, Any],
        elapsed_s: float,
        cost_usd: float,
        request: GenerationRequest | None = None,
        path: Path | None = None,
        image: Image.Image | None = None,
    ) -> None:
        self.png_bytes = png_bytes
        self.seed = seed
        self.model = model
        self.provider = provider
        self.params = params
        self.elapsed_s = elapsed_s
        self.cost_usd = cost_usd
        self.request = request
        self.path = path
        self.id: str | None = None
        self._image = image

    @property
    def image(self) -> Image.Image:
        if self._image is None:
            import io

            from PIL import Image

            img = Image.open(io.BytesIO(self.png_bytes))
            img.load()
            self._image = img
        return self._image

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def prompt(self) -> str:
        return str(self.params.get("prompt", self.request.prompt if self.request else ""))

    def caption(self) -> str:
        """Model, seed, size, time taken, cost and where it was saved, in one line."""
        width, height = self.params.get("width"), self.params.get("height")
        if width is None or height is None:
            width, height = self.size
        where = _short_path(self.path) if self.path is not None else ""
        return caption_line(
            self.model,
            self.seed,
            f"{width}×{height}",
            f"{self.elapsed_s:.1f} s",
            f"${self.cost_usd:.3f}",
            where,
        )

    def __repr__(self) -> str:
        prompt = self.prompt
        short = prompt if len(prompt) <= 40 else prompt[:37] + "..."
        return (
            f"Generation(model={self.model!r}, seed={self.seed}, prompt={short!r}, "
            f"elapsed_s={self.elapsed_s:.2f}, cost_usd={self.cost_usd:.4f}, path={self.path!r})"
        )

    def _repr_png_(self) -> bytes:
        return self.png_bytes

    def _repr_html_(self) -> str:
        from .grid import figure_html
        from .images import thumbnail_png

        return figure_html(thumbnail_png(self.png_bytes, 512), self.caption(), max_width="512px")


def _short_path(path: Path) -> str:
    """The path relative to the working directory when it lies below it (short captions)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class ServerState(str, enum.Enum):
    """What the self-hosted server is doing, as far as this client knows."""

    NOT_CONFIGURED = "not_configured"
    CHECKING = "checking"
    HEALTHY = "healthy"
    BUSY = "busy"
    OFFLINE = "offline"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class HealthInfo:
    """The server's ``/health`` answer; unknown extra fields are kept in ``extra``."""

    status: str
    current_model: str | None
    available_models: tuple[str, ...]
    ip_adapter_loaded: bool = False
    cuda_available: bool = False
    gpu_name: str | None = None
    vram_allocated_gb: float | None = None
    idle_seconds: float | None = None
    idle_timeout_minutes: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_until_shutdown(self) -> float | None:
        if self.idle_seconds is None or self.idle_timeout_minutes is None:
            return None
        return max(0.0, self.idle_timeout_minutes * 60 - self.idle_seconds)


@dataclass(frozen=True)
class LocalModelInfo:
    """One entry of the server's ``/models`` answer."""

    name: str
    description: str = ""
    downloaded: bool = True
    loaded: bool = False
    default_cfg: float | None = None
    default_steps: int | None = None


@dataclass(frozen=True)
class SelfHostedStatus:
    """The answer to "can I use my own server now?", with what it said.

    ``known_models`` is the server's model list from the last time it answered
    in this session (``None`` if it never did); the menu uses it while the
    server is offline or busy.

    With several servers, the combined status holds each one's own in
    ``servers`` (in SELFHOSTED_API_URL's order) and its ``reason`` says how many
    are up ("2 of 3 servers up"); ``servers`` is empty for one server.
    """

    state: ServerState
    url: str | None = None
    reason: str | None = None
    health: HealthInfo | None = None
    models: dict[str, LocalModelInfo] | None = None
    loras: tuple[str, ...] = ()
    known_models: tuple[str, ...] | None = None
    checked_at: float | None = None
    servers: tuple[SelfHostedStatus, ...] = ()

    def __repr__(self) -> str:  # the URL may carry user:password: shown masked
        shown = (
            f"{f.name}={(self.display_url if f.name == 'url' else getattr(self, f.name))!r}"
            for f in fields(self)
        )
        return f"SelfHostedStatus({', '.join(shown)})"

    @property
    def reachable(self) -> bool:
        return self.state in (ServerState.HEALTHY, ServerState.BUSY)

    @property
    def local_models(self) -> tuple[str, ...]:
        """The server's menu, or the last one it gave, or the known three."""
        from .catalog import LOCAL_MODEL_NAMES

        if self.health is not None:
            return self.health.available_models
        if self.known_models is not None:
            return self.known_models
        return LOCAL_MODEL_NAMES

    @property
    def display_url(self) -> str | None:
        from .config import mask_url

        return mask_url(self.url) if self.url else None

    def headline(self) -> tuple[str, str]:
        """(the state in a few words, the detail): every wording of a status is here.

        The status indicator shows both lines, adding what only its watcher knows.
        """
        url = self.display_url or ""
        if self.servers:  # several servers: the reason counts them ("2 of 3 servers up")
            if self.state is ServerState.HEALTHY:
                return self.reason or f"{len(self.servers)} servers", ""
            if self.state is ServerState.CHECKING:
                return f"Checking your {len(self.servers)} servers…", ""
            return f"{self.state.value.capitalize()}: {self.reason}", ""
        if self.state is ServerState.NOT_CONFIGURED:
            from .config import NOT_CONFIGURED

            return "Self-hosted server: not configured", self.reason or NOT_CONFIGURED
        if self.state is ServerState.CHECKING:
            return "Checking your server…", url
        if self.state is ServerState.OFFLINE:
            return f"Offline: {self.reason or 'no answer'}", url
        if self.state is ServerState.BUSY:
            return f"Busy: {self.reason or 'drawing an image'}", url
        h = self.health
        if h is None:  # healthy without its answer: only a hand-made status
            return "Healthy", url
        gpu = h.gpu_name or "unknown GPU"
        loaded = h.current_model or "no model loaded"
        vram = f", {h.vram_allocated_gb:.1f} GB VRAM" if h.vram_allocated_gb is not None else ""
        return f"Healthy: {gpu}, {loaded}{vram}", url

    def summary(self) -> str:
        """The status in one line of words: ``Offline: timed out · http://…``."""
        return " · ".join(part for part in self.headline() if part)
