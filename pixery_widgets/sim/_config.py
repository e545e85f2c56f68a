"""The simulator's knobs and the model menu it pretends to serve."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from ._draw import TEXTURES, Texture
from ._faults import Fault, normalize_faults


class ModelInfo(NamedTuple):
    """What the real server knows about one SDXL fine-tune."""

    description: str
    default_steps: int
    default_cfg: float
    default_negative: str


MODELS: dict[str, ModelInfo] = {
    "animagine": ModelInfo(
        "Animagine XL 4.0: anime, general purpose",
        28,
        5.0,
        "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, "
        "cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, "
        "username, blurry",
    ),
    "pony": ModelInfo(
        "Pony Diffusion V6 XL: stylised, score tags",
        25,
        7.0,
        "score_4, score_5, score_6, source_pony, source_furry, worst quality, low quality, blurry",
    ),
    "noobai": ModelInfo(
        "NoobAI XL: anime, Danbooru tags",
        28,
        5.5,
        "worst quality, old, early, low quality, lowres, signature, username, logo, bad hands, "
        "mutated hands",
    ),
}

# A model named in available_models but unknown here still gets sensible defaults.
FALLBACK_MODEL = ModelInfo("SDXL fine-tune", 28, 5.0, "worst quality, low quality")

DEFAULT_LORAS = ("detail_tweaker", "add_more_details", "pixel_art")


def model_info(name: str) -> ModelInfo:
    return MODELS.get(name, FALLBACK_MODEL)


@dataclass
class SimConfig:
    """Knobs of the simulated server; read on every request, so changes apply live."""

    gen_seconds: float = 1.0
    switch_seconds: float = 0.5
    missing: set[str] = field(default_factory=set)
    loras: list[str] = field(default_factory=lambda: list(DEFAULT_LORAS))
    start_loaded: str | None = "animagine"
    available_models: list[str] = field(default_factory=lambda: list(MODELS))
    ip_adapter_loaded: bool = True
    gpu_name: str | None = "Simulated RTX 4090"  # None: no CUDA, like a CPU-only box
    idle_timeout_minutes: float = 60
    exit_when_idle: bool = False
    faults: dict[str, Fault] = field(default_factory=dict)
    texture: Texture = "flat"  # "photo": ~1.5 MB PNGs at 1024x1024, "photo-heavy": ~3 MB

    def __post_init__(self) -> None:
        self.missing = set(self.missing)
        self.loras = list(self.loras)
        self.available_models = list(self.available_models)
        self.faults = normalize_faults(self.faults)
        if self.start_loaded is not None and self.start_loaded not in self.available_models:
            raise ValueError(f"start_loaded {self.start_loaded!r} is not in available_models")
        if self.texture not in TEXTURES:
            raise ValueError(f"texture {self.texture!r} is not one of {', '.join(TEXTURES)}")

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial change (from the control API); unknown keys are an error."""
        known = set(self.__dataclass_fields__)
        unknown = set(changes) - known
        if unknown:
            raise ValueError(
                f"unknown config keys: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        checked = replace(self, **changes)  # validates before anything changes
        for name in changes:
            setattr(self, name, getattr(checked, name))

    def to_json(self) -> dict[str, Any]:
        return {
            "gen_seconds": self.gen_seconds,
            "switch_seconds": self.switch_seconds,
            "missing": sorted(self.missing),
            "loras": list(self.loras),
            "start_loaded": self.start_loaded,
            "available_models": list(self.available_models),
            "ip_adapter_loaded": self.ip_adapter_loaded,
            "gpu_name": self.gpu_name,
            "idle_timeout_minutes": self.idle_timeout_minutes,
            "exit_when_idle": self.exit_when_idle,
            "faults": {route: fault.to_json() for route, fault in self.faults.items()},
            "texture": self.texture,
        }
