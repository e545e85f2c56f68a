"""Local checks that run before anything is sent: a pure function of the inputs.

Every field's type, range and label come from the request schema (``core/schema.py``;
the ranges are the self-hosted server's own), so a typo costs nothing and the message
names the allowed values.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ..core import schema
from ..core.catalog import ModelSpec, resolve_model
from ..core.errors import InvalidRequestError, UnknownLoraError
from ..core.images import as_references
from ..core.types import GenerationRequest

__all__ = [
    "MAX_SEED",
    "RANDOM_SEED_RANGE",
    "RANGES",
    "as_references",
    "build_request",
    "check_lora",
]

MAX_SEED = schema.MAX_SEED
#: Seeds drawn at random (a batch's ``seeds=<count>``, the panel's empty Seed field)
#: lie in [0, 2**32), as in most SD tools.
RANDOM_SEED_RANGE = 2**32

#: (low, high) inclusive, as the self-hosted server validates them (from the schema).
RANGES: dict[str, tuple[float, float]] = {f.name: f.range for f in schema.FIELDS if f.range}


def check_lora(lora: str | None, server_loras: Sequence[str] | None) -> None:
    """Refuse a LoRA the server does not list (``server_loras``: its list, when known)."""
    if lora is not None and server_loras is not None and lora not in server_loras:
        listed = ", ".join(server_loras) if server_loras else "none"
        raise UnknownLoraError(f"The server has no LoRA named {lora!r}. Available LoRAs: {listed}.")


def build_request(
    prompt: str,
    model: str,
    *,
    local_models: Sequence[str] = (),
    server_loras: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    keywords: Collection[str] | None = None,
    **params: Any,
) -> GenerationRequest:
    """Resolve the model and check every field; raise ``InvalidRequestError`` on the first bad one.

    ``params`` are request fields (``schema.FIELDS``); any other keyword, and ``extra``,
    are provider options, each refused unless the model takes it. ``keywords`` are the
    caller's own keyword names, offered when suggesting a misspelt one (default: the
    request fields). ``server_loras`` is the server's LoRA list when known; a LoRA not in
    it is refused.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequestError("The prompt is empty; describe the image you want.")
    spec: ModelSpec = resolve_model(model, local_models=tuple(local_models))
    given, options = schema.split(params)
    options = {**(extra or {}), **options}
    schema.check_names(options, spec, keywords=keywords or [f.name for f in schema.FIELDS])

    values = {
        f.name: schema.check_value(f.name, given.get(f.name, f.default))
        for f in schema.FIELDS
        if f.name != "prompt"
    }
    schema.check_taken(values, spec)
    references = values["reference"]
    if len(references) > spec.max_references:
        raise InvalidRequestError(
            f"{spec.display_name} takes at most {spec.max_references} reference image(s), "
            f"got {len(references)}."
        )
    check_lora(values["lora"], server_loras)

    return GenerationRequest(
        prompt=prompt,
        model=spec.id,
        provider=spec.provider,
        **{schema.field(name).attribute: value for name, value in values.items()},
        extra=options,
    )
