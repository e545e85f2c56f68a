"""The catalog of models: IDs, aliases, providers, prices and capabilities.

Provider model IDs get renamed; this is the one place that knows them. Every
model has a short ``id`` used in the menu and the API; ``resolve_model``
also accepts aliases and the providers' own API IDs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownModelError

__all__ = [
    "CATALOG",
    "LOCAL_MODEL_NAMES",
    "SDXL_SIZES",
    "ModelSpec",
    "cloud_models",
    "local_model_spec",
    "resolve_model",
]

SELFHOSTED = "selfhosted"

#: The three SDXL fine-tunes the self-hosted server knows; shown before it answers.
LOCAL_MODEL_NAMES: tuple[str, ...] = ("animagine", "pony", "noobai")

#: SDXL-native sizes users pick, (width, height).
SDXL_SIZES: tuple[tuple[int, int], ...] = (
    (1024, 1024),
    (832, 1216),
    (1216, 832),
    (768, 1344),
    (1344, 768),
)


@dataclass(frozen=True)
class ModelSpec:
    """What the package knows about one model before asking anyone."""

    id: str
    provider: str
    api_id: str
    display_name: str
    aliases: tuple[str, ...] = ()
    #: List price of one image in USD; ``None`` when it depends on size (see ``cost_per_megapixel``).
    cost_per_image: float | None = None
    cost_per_megapixel: float | None = None
    max_references: int = 0
    takes_seed: bool = False
    takes_negative_prompt: bool = False
    #: fal only: the request's size field ("image_size" or "aspect_ratio").
    size_field: str | None = None
    #: fal only: the endpoint used when a reference image is given.
    reference_api_id: str | None = None
    default_steps: int | None = None
    default_cfg: float | None = None
    description: str = ""

    @property
    def is_local(self) -> bool:
        return self.provider == SELFHOSTED

    def estimated_cost(self, width: int = 1024, height: int = 1024) -> float:
        """List price of one image at this size (0 for the self-hosted server)."""
        if self.cost_per_megapixel is not None:
            return self.cost_per_megapixel * width * height / 1_000_000
        return self.cost_per_image or 0.0


_LOCAL_DEFAULTS = {
    "animagine": (28, 5.0, "Animagine XL: anime illustration"),
    "pony": (25, 7.0, "Pony Diffusion XL: stylised characters"),
    "noobai": (28, 5.5, "NoobAI XL: anime, broad character knowledge"),
}


def local_model_spec(name: str) -> ModelSpec:
    """The spec of a model the self-hosted server lists (known or not)."""
    steps, cfg, description = _LOCAL_DEFAULTS.get(name, (None, None, ""))
    return ModelSpec(
        id=name,
        provider=SELFHOSTED,
        api_id=name,
        display_name=name,
        cost_per_image=0.0,
        max_references=1,
        takes_seed=True,
        takes_negative_prompt=True,
        default_steps=steps,
        default_cfg=cfg,
        description=description,
    )


def _fal(
    id: str, api_id: str, name: str, cost: float | None, *aliases: str, **kw: object
) -> ModelSpec:
    kw.setdefault("size_field", "image_size")
    return ModelSpec(
        id=id,
        provider="fal",
        api_id=api_id,
        display_name=name,
        aliases=aliases,
        cost_per_image=cost,
        takes_seed=True,
        **kw,  # type: ignore[arg-type]
    )


_CLOUD: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="gemini-flash",
        provider="gemini",
        api_id="gemini-2.5-flash-image",
        display_name="Gemini 2.5 Flash Image",
        aliases=("nano-banana", "gemini-2.5-flash-image-preview"),
        cost_per_image=0.039,
        max_references=10,
    ),
    ModelSpec(
        id="gemini-pro",
        provider="gemini",
        api_id="gemini-3-pro-image-preview",
        display_name="Gemini 3 Pro Image",
        aliases=("nano-banana-pro",),
        cost_per_image=0.134,
        max_references=10,
    ),
    ModelSpec(
        id="gpt-image",
        provider="openai",
        api_id="gpt-image-1",
        display_name="GPT Image 1",
        aliases=("gpt-image-1",),
        cost_per_image=0.04,
    ),
    ModelSpec(
        id="dall-e-3",
        provider="openai",
        api_id="dall-e-3",
        display_name="DALL·E 3",
        aliases=("dalle3", "dalle-3"),
        cost_per_image=0.04,
    ),
    _fal("flux-schnell", "fal-ai/flux/schnell", "FLUX.1 schnell", 0.003),
    _fal("flux-pro", "fal-ai/flux-pro/v1.1", "FLUX1.1 pro", 0.05, "flux-pro-1.1"),
    _fal("flux-ultra", "fal-ai/flux-pro/v1.1-ultra", "FLUX1.1 pro ultra", 0.06, "flux-pro-ultra"),
    _fal("recraft", "fal-ai/recraft-v3", "Recraft V3", 0.04, "recraft-v3"),
    _fal("flux-2-turbo", "fal-ai/flux-2/turbo", "FLUX.2 turbo", 0.008),
    _fal("flux-2-pro", "fal-ai/flux-2-pro", "FLUX.2 pro", 0.03),
    _fal("flux-2-max", "fal-ai/flux-2-max", "FLUX.2 max", 0.07),
    _fal("imagen4", "fal-ai/imagen4/preview", "Imagen 4", 0.04, size_field="aspect_ratio"),
    _fal(
        "imagen4-fast",
        "fal-ai/imagen4/preview/fast",
        "Imagen 4 fast",
        0.04,
        size_field="aspect_ratio",
    ),
    _fal(
        "imagen4-ultra",
        "fal-ai/imagen4/preview/ultra",
        "Imagen 4 ultra",
        0.06,
        size_field="aspect_ratio",
    ),
    _fal(
        "z-image-turbo",
        "fal-ai/z-image/turbo",
        "Z-Image turbo",
        None,
        "z-image",
        cost_per_megapixel=0.005,
        max_references=1,
        reference_api_id="fal-ai/z-image/turbo/image-to-image",
    ),
)

#: Every model the package knows without asking a server, by id.
CATALOG: dict[str, ModelSpec] = {
    **{name: local_model_spec(name) for name in LOCAL_MODEL_NAMES},
    **{spec.id: spec for spec in _CLOUD},
}

_ALIASES: dict[str, str] = {}
for _spec in CATALOG.values():
    for _name in (_spec.id, _spec.api_id, *_spec.aliases):
        _ALIASES.setdefault(_name.lower(), _spec.id)


def cloud_models() -> list[ModelSpec]:
    """Cloud models in menu order."""
    return list(_CLOUD)


def resolve_model(name: str, *, local_models: tuple[str, ...] | list[str] = ()) -> ModelSpec:
    """The spec for an id, alias or API id; ``local_models`` adds names a server listed."""
    key = name.strip().lower()
    if key in _ALIASES:
        return CATALOG[_ALIASES[key]]
    for local in local_models:
        if local.lower() == key:
            return local_model_spec(local)
    known = sorted({*CATALOG, *local_models})
    raise UnknownModelError(f"Unknown model {name!r}. Known models: {', '.join(known)}.")
