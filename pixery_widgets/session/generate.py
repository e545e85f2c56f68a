"""The plain Python API: ``agenerate`` and its sync twin ``generate``.

The panel calls the same ``agenerate``, so a generation behaves the same from
a widget, a cell or a script.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Mapping
from typing import Any

from ..archive import Archive, get_archive, use_generator
from ..core import schema
from ..core.catalog import CATALOG
from ..core.config import Settings, env_names, load_settings
from ..core.errors import ArchiveError, MissingAPIKeyError
from ..core.sync import run_sync
from ..core.types import Generation, GenerationRequest
from ..providers import get_provider
from ..providers.pool import aloras
from ..providers.servers import known_pool_models
from .ledger import LEDGER
from .validation import build_request, check_lora

__all__ = ["agenerate", "generate", "prepare_request"]


async def prepare_request(
    prompt: str,
    model: str,
    settings: Settings,
    *,
    extra: Mapping[str, Any] | None = None,
    keywords: Collection[str] | None = None,
    **fields: Any,
) -> GenerationRequest:
    """Validate everything that can be checked without drawing; nothing is generated.

    ``fields`` are request fields, ``extra`` provider options (``build_request``). For a
    LoRA on the self-hosted server this then asks the server's ``/loras``, so an unknown
    LoRA is refused before a slow ``/generate``.
    """
    local = known_pool_models(settings) or ()
    request = build_request(
        prompt, model, local_models=local, extra=extra, keywords=keywords, **fields
    )
    if request.provider == "selfhosted" and request.lora is not None:
        check_lora(request.lora, await aloras(settings))  # every server's that is up, for a pool
    provider = get_provider(request.provider)
    provider.validate(request)
    if request.provider != "selfhosted" and not settings.has_key(request.provider):
        raise MissingAPIKeyError(
            f"{CATALOG[request.model].display_name} needs an API key: set "
            f"{env_names(request.provider)} in your environment or ~/.env.",
            provider=request.provider,
        )
    return request


@schema.with_request_fields()
async def agenerate(
    prompt: str,
    model: str = "animagine",
    *,
    settings: Settings | None = None,
    archive: bool | Archive | str | os.PathLike[str] = True,
    **params: Any,
) -> Generation:
    """Make one image with ``model`` (an id or alias) and return it.

    The keywords are the request fields (see the signature) and the model's provider
    options (e.g. ``quality="hd"`` for DALL·E 3); any other is refused, with a suggestion.
    Everything checkable is checked before anything is drawn (``InvalidRequestError``,
    ``MissingAPIKeyError``, ``ConfigurationError``; a LoRA asks the server's ``/loras``).
    Settings are read afresh unless given. The image is archived as soon as it is
    decoded (``archive``: True for ``PIXERY_ARCHIVE_DIR``, a path or an ``Archive``, or
    False) and counted in ``px.session_ledger`` even if archiving fails; an
    ``ArchiveError`` carries the image as ``.generation``.
    """
    settings = settings if settings is not None else load_settings()
    fields, options = schema.split(params)
    request = await prepare_request(
        prompt, model, settings, extra=options, keywords=_KEYWORDS, **fields
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


@schema.with_request_fields()
def generate(
    prompt: str,
    model: str = "animagine",
    *,
    settings: Settings | None = None,
    archive: bool | Archive | str | os.PathLike[str] = True,
    **params: Any,
) -> Generation:
    """Sync twin of ``agenerate``; works in scripts and inside a running kernel."""
    return run_sync(agenerate(prompt, model, settings=settings, archive=archive, **params))


#: agenerate's keywords, offered as suggestions for a misspelt one.
_KEYWORDS = schema.keywords_of(agenerate)

# A record regenerates through this layer: hand the archive its generator.
use_generator(agenerate)
