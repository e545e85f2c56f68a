"""The plain Python API: ``agenerate`` and its sync twin ``generate``.

The panel calls the same ``agenerate``, so a generation behaves the same from
a widget, a cell or a script.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from ..archive import Archive, get_archive, use_generator
from ..core.catalog import resolve_model
from ..core.config import Settings, env_names, load_settings
from ..core.errors import ArchiveError, MissingAPIKeyError
from ..core.images import ReferenceLike
from ..core.sync import run_sync
from ..core.types import DEFAULT_IP_ADAPTER_SCALE, DEFAULT_LORA_SCALE, Generation, GenerationRequest
from ..providers import get_provider
from ..providers.pool import aloras
from ..providers.servers import known_pool_models
from .ledger import LEDGER
from .validation import build_request

__all__ = ["agenerate", "generate", "prepare_request"]


async def prepare_request(
    prompt: str, model: str, settings: Settings, **params: Any
) -> GenerationRequest:
    """Validate everything that can be checked without drawing; nothing is generated.

    For a LoRA on the self-hosted server this asks the server's ``/loras``, so an
    unknown LoRA is refused before a slow ``/generate``.
    """
    local = known_pool_models(settings) or ()
    spec = resolve_model(model, local_models=local)
    server_loras = None
    if spec.is_local and params.get("lora"):
        server_loras = await aloras(settings)  # every server's that is up, for a pool
    request = build_request(prompt, model, local_models=local, server_loras=server_loras, **params)
    provider = get_provider(request.provider)
    provider.validate(request)
    if request.provider != "selfhosted" and not settings.has_key(request.provider):
        raise MissingAPIKeyError(
            f"{spec.display_name} needs an API key: set {env_names(request.provider)} "
            "in your environment or ~/.env.",
            provider=request.provider,
        )
    return request


async def agenerate(
    prompt: str,
    model: str = "animagine",
    *,
    negative_prompt: str | None = None,
    width: int = 1024,
    height: int = 1024,
    steps: int | None = None,
    cfg_scale: float | None = None,
    seed: int | None = None,
    reference: ReferenceLike | Sequence[ReferenceLike] | None = None,
    ip_adapter_scale: float = DEFAULT_IP_ADAPTER_SCALE,
    lora: str | None = None,
    lora_scale: float = DEFAULT_LORA_SCALE,
    settings: Settings | None = None,
    archive: bool | Archive | str | os.PathLike[str] = True,
    **extra: Any,
) -> Generation:
    """Make one image with ``model`` (an id or alias) and return it.

    Everything checkable is checked before anything is drawn (``InvalidRequestError``,
    ``MissingAPIKeyError``, ``ConfigurationError``; a LoRA asks the server's ``/loras``).
    Settings are read afresh unless given. The image is archived as soon as it is
    decoded (``archive``: True for ``PIXERY_ARCHIVE_DIR``, a path or an ``Archive``, or
    False) and counted in ``px.session_ledger`` even if archiving fails; an
    ``ArchiveError`` carries the image as ``.generation``.
    """
    settings = settings if settings is not None else load_settings()
    request = await prepare_request(
        prompt,
        model,
        settings,
        negative_prompt=negative_prompt,
        width=width,
        height=height,
        steps=steps,
        cfg_scale=cfg_scale,
        seed=seed,
        reference=reference,
        ip_adapter_scale=ip_adapter_scale,
        lora=lora,
        lora_scale=lora_scale,
        extra=extra or None,
    )
    provider = get_provider(request.provider)
    if archive is False:
        generation = await provider.generate(request, settings)
        LEDGER.record(generation)
        return generation
    loop = asyncio.get_running_loop()
    kept: list[Generation] = []

    def keep(generation: Generation) -> None:
        """Archive and count the image in a worker thread (the self-hosted provider's
        own decoding thread; a cloud provider's answer gets one of its own below).

        It runs to the end even when ``agenerate`` was cancelled meanwhile: the
        image was paid for. The count is made on the loop, where the panel listens.
        """
        kept.append(generation)
        try:
            _save_to_archive(archive, settings, generation)
        finally:  # after the save: waking the loop earlier would slow the save down
            try:
                loop.call_soon_threadsafe(LEDGER.record, generation)
            except RuntimeError:  # the loop has closed since: nobody is listening any more
                LEDGER.record(generation)

    generation = await provider.generate(request, settings, on_image=keep)
    if not kept:  # this provider leaves the archiving to its caller
        await asyncio.to_thread(keep, generation)
    return generation


def _save_to_archive(
    archive: bool | Archive | str | os.PathLike[str], settings: Settings, generation: Generation
) -> None:
    """Open (once) and write to the archive; the error carries the image. Worker thread."""
    try:
        target = get_archive(archive, settings)
        if target is not None:
            target._keep(generation)
    except ArchiveError as exc:
        if getattr(exc, "generation", None) is None:
            exc.generation = generation  # type: ignore[attr-defined]
        raise


def generate(prompt: str, model: str = "animagine", **params: Any) -> Generation:
    """Sync twin of ``agenerate``; works in scripts and inside a running kernel."""
    return run_sync(agenerate(prompt, model, **params))


# A record regenerates through this layer: hand the archive its generator.
use_generator(agenerate)
