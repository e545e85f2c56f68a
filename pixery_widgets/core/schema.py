"""The request schema: every field of a generation request, declared once.

What lists a request's fields follows from ``FIELDS``: the signatures of
``agenerate``/``generate`` and the batch functions (``with_request_fields``), local
validation (``check_value``: types, ranges, labels), which back ends and models take a
field (``takes``), the self-hosted ``/generate`` body (a table in that provider maps a
field to its body key), the panel's request (``applicable``), and what the archive
keeps (``column``, ``a1111``). Provider options that travel in
``GenerationRequest.extra`` (OpenAI's ``quality``, fal's ``num_inference_steps``) are
declared in ``OPTIONS``, one row per back end, so an option is accepted where it is
taken and refused, by name, everywhere else.

Pure data and small pure helpers; nothing here does I/O except reading a reference
image a caller passed as a path.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .catalog import CATALOG, ModelSpec
from .errors import InvalidRequestError
from .signatures import show_keywords

__all__ = [
    "BACKENDS",
    "FIELDS",
    "MAX_SEED",
    "OPTIONS",
    "RequestField",
    "applicable",
    "check_names",
    "check_taken",
    "check_value",
    "field",
    "fields_for",
    "is_set",
    "keywords_of",
    "options_for",
    "split",
    "takes",
    "with_request_fields",
]

#: The largest seed a request may carry.
MAX_SEED = 2**63 - 1

#: The back ends (provider names), as a sentence names their models.
BACKENDS: dict[str, str] = {
    "selfhosted": "your own server's models",
    "gemini": "Gemini models",
    "openai": "OpenAI models",
    "fal": "fal.ai models",
}
_ALL = tuple(BACKENDS)


@dataclass(frozen=True)
class RequestField:
    """One request field (or one back end's provider option) and everything known about it."""

    name: str
    #: ``int``, ``float`` or ``str``; ``object`` for references and provider options.
    type: type
    default: Any
    #: What the panel and the messages call it ("CFG scale").
    label: str
    #: The back ends (provider names) that take it.
    backends: tuple[str, ...]
    #: Inclusive (low, high), or None.
    range: tuple[float, float] | None = None
    #: Its column in the archive's index, or None.
    column: str | None = None
    #: Its key in the AUTOMATIC1111 ``parameters`` text, or None.
    a1111: str | None = None
    #: The ``GenerationRequest`` attribute, when it is not ``name``.
    attr: str | None = None
    #: Only these models (catalog ids) of those back ends take it; None: all of them.
    models: tuple[str, ...] | None = None
    #: The ``ModelSpec`` attribute that must be true for a model to take it.
    capability: str | None = None
    #: Meaningful only when this other field is set (``lora_scale`` needs ``lora``).
    needs: str | None = None
    #: How a sentence begins when it speaks of it, when not the label ("The seed").
    subject: str | None = None
    #: The sentence when a model does not take it (``{model}``), when not the generic one.
    refusal: str | None = None
    #: The signature's annotation, when not derived from ``type`` and ``default``.
    hint: str | None = None

    @property
    def attribute(self) -> str:
        return self.attr or self.name

    @property
    def annotation(self) -> str:
        if self.hint is not None:
            return self.hint
        name = self.type.__name__ if self.type is not object else "Any"
        return f"{name} | None" if self.default is None else name


#: The request fields, in the order signatures and messages list them (``...``: required).
FIELDS: tuple[RequestField, ...] = (
    RequestField("prompt", str, ..., "Prompt", _ALL, column="prompt"),
    RequestField(
        "negative_prompt", str, None, "Negative prompt", ("selfhosted",),
        column="negative_prompt", a1111="Negative prompt",
        capability="takes_negative_prompt", refusal="{model} does not take a negative prompt.",
    ),
    RequestField("width", int, 1024, "Width", _ALL, range=(512, 1536), column="width", a1111="Size"),
    RequestField("height", int, 1024, "Height", _ALL, range=(512, 1536), column="height", a1111="Size"),
    RequestField(
        "steps", int, None, "Steps", ("selfhosted",), range=(1, 50), column="steps", a1111="Steps",
    ),
    RequestField(
        "cfg_scale", float, None, "CFG scale", ("selfhosted",), range=(1.0, 20.0),
        column="cfg_scale", a1111="CFG scale",
    ),
    RequestField(
        "seed", int, None, "Seed", ("selfhosted", "fal"), range=(0, MAX_SEED),
        column="seed", a1111="Seed", capability="takes_seed", subject="The seed",
    ),
    RequestField(
        "reference", object, None, "Reference image", ("selfhosted", "gemini", "fal"),
        column="reference_hash", a1111="IP-Adapter reference", attr="references",
        capability="max_references", refusal="{model} does not take reference images.",
        hint="ReferenceLike | Sequence[ReferenceLike] | None",
    ),
    RequestField(
        "ip_adapter_scale", float, 0.7, "IP-Adapter scale", ("selfhosted",), range=(0.0, 1.0),
        needs="reference",
    ),
    RequestField(
        "lora", str, None, "LoRA", ("selfhosted",), column="lora", a1111="Lora",
        refusal="LoRAs run on your own server only; {model} does not take one.",
    ),
    RequestField(
        "lora_scale", float, 0.8, "LoRA scale", ("selfhosted",), range=(0.0, 1.5),
        column="lora_scale", a1111="Lora", needs="lora",
    ),
)  # fmt: skip


def _option(name: str, label: str, backend: str, *models: str) -> RequestField:
    return RequestField(name, object, None, label, (backend,), models=models or None)


#: Provider options (``GenerationRequest.extra``): one row per back end that takes the name.
OPTIONS: tuple[RequestField, ...] = (
    _option("aspect_ratio", "Aspect ratio", "gemini"),
    _option("image_size", "Image size", "gemini"),
    _option("quality", "Quality", "openai"),
    _option("style", "Style", "openai", "dall-e-3"),
    _option("background", "Background", "openai", "gpt-image"),
    _option("moderation", "Moderation", "openai", "gpt-image"),
    _option("output_format", "Output format", "openai", "gpt-image"),
    _option("output_compression", "Output compression", "openai", "gpt-image"),
    _option("num_inference_steps", "Inference steps", "fal"),
    _option("guidance_scale", "Guidance scale", "fal"),
    _option("enable_safety_checker", "Safety checker", "fal"),
    _option("safety_tolerance", "Safety tolerance", "fal"),
    _option("output_format", "Output format", "fal"),
    _option("acceleration", "Acceleration", "fal"),
    _option("enhance_prompt", "Enhance prompt", "fal"),
    _option("enable_prompt_expansion", "Prompt expansion", "fal"),
    _option("image_size", "Image size", "fal"),
    _option("aspect_ratio", "Aspect ratio", "fal"),
    _option("strength", "Strength", "fal", "z-image-turbo"),
    _option("raw", "Raw", "fal", "flux-ultra"),
    _option("style", "Style", "fal", "recraft"),
    _option("colors", "Colors", "fal", "recraft"),
)

_BY_NAME = {f.name: f for f in FIELDS}


def field(name: str) -> RequestField:
    """The request field called ``name`` (``KeyError`` if there is none)."""
    return _BY_NAME[name]


def fields_for(provider: str) -> tuple[RequestField, ...]:
    """The request fields back end ``provider`` takes (some only for some of its models)."""
    return tuple(f for f in FIELDS if provider in f.backends)


def _admits(declared: RequestField, spec: ModelSpec) -> bool:
    if spec.provider not in declared.backends:
        return False
    if declared.models is not None and spec.id not in declared.models:
        return False
    return declared.capability is None or bool(getattr(spec, declared.capability))


def options_for(spec: ModelSpec) -> tuple[RequestField, ...]:
    """The provider options ``spec`` takes."""
    return tuple(o for o in OPTIONS if _admits(o, spec))


def takes(spec: ModelSpec, name: str) -> bool:
    """Whether model ``spec`` takes the request field or provider option ``name``."""
    if name in _BY_NAME:
        return _admits(_BY_NAME[name], spec)
    return any(o.name == name and _admits(o, spec) for o in OPTIONS)


def is_set(value: Any) -> bool:
    """A value that asks for something: not None, not blank text, not an empty list."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return not (isinstance(value, (tuple, list)) and not value)


def split(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword arguments → (request fields, everything else: provider options or mistakes)."""
    fields = {k: v for k, v in params.items() if k in _BY_NAME}
    return fields, {k: v for k, v in params.items() if k not in _BY_NAME}


# -- values ----------------------------------------------------------------------------------


def _shown(value: float) -> str:
    return "2**63 - 1" if value == MAX_SEED else str(value)


def check_value(name: str, value: Any) -> Any:
    """``value`` for field ``name``, normalised (a whole float → int, blank text → None,
    references → a tuple of image bytes); ``InvalidRequestError`` naming the label and range."""
    f = _BY_NAME[name]
    subject = f.subject or f.label
    optional = f.default is None
    if f.attribute == "references":
        from .images import as_references

        return as_references(value)
    if value is None and optional:
        return None
    if f.type is str:
        if not isinstance(value, str):
            raise InvalidRequestError(f"{subject} must be text, got {value!r}.")
        return value if value.strip() or not optional else None
    or_none = " or None" if optional else ""
    if f.type is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequestError(f"{subject} must be a whole number{or_none}, got {value!r}.")
    elif f.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequestError(f"{subject} must be a number{or_none}, got {value!r}.")
        value = float(value)
        if math.isnan(value):
            raise InvalidRequestError(f"{subject} must be a number{or_none}, got NaN.")
    if f.range is not None and not f.range[0] <= value <= f.range[1]:
        low, high = f.range
        raise InvalidRequestError(
            f"{subject} must be between {_shown(low)} and {_shown(high)}, got {value}."
        )
    return value


# -- what a model takes ----------------------------------------------------------------------


def _declared(name: str) -> list[RequestField]:
    return [d for d in (*FIELDS, *OPTIONS) if d.name == name]


def _only(declared: Iterable[RequestField]) -> str:
    """Who takes a name, as a clause: "only OpenAI models do", "only DALL·E 3 does"."""
    names: list[str] = []
    for d in declared:
        if d.models is not None:
            names += [CATALOG[m].display_name if m in CATALOG else m for m in d.models]
        else:
            names += [BACKENDS[b] for b in d.backends]
    names = list(dict.fromkeys(names))
    plural = len(names) > 1 or any(d.models is None for d in declared)
    text = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    return f"only {text} {'do' if plural else 'does'}"


def _not_taken(declared: list[RequestField], spec: ModelSpec) -> InvalidRequestError:
    first = declared[0]
    if first.refusal is not None:
        return InvalidRequestError(first.refusal.format(model=spec.display_name))
    return InvalidRequestError(
        f"{spec.display_name} does not take {first.name}; {_only(declared)}."
    )


def check_taken(values: Mapping[str, Any], spec: ModelSpec) -> None:
    """Refuse a field given a value (other than its default) that model ``spec`` does not take."""
    for f in FIELDS:
        value = values.get(f.name)
        if is_set(value) and value != f.default and not _admits(f, spec):
            raise _not_taken([f], spec)


def _suggestion(name: str, allowed: list[str], spec: ModelSpec) -> str:
    """ " Did you mean 'seed'?", from what ``spec`` takes first, else from every declared name
    (saying who takes that one)."""
    close = difflib.get_close_matches(name, allowed, n=1)
    if close:
        return f" Did you mean {close[0]!r}?"
    everything = list(dict.fromkeys(d.name for d in (*FIELDS, *OPTIONS)))
    close = difflib.get_close_matches(name, everything, n=1)
    if not close:
        return ""
    return (
        f" Did you mean {close[0]!r}? {spec.display_name} does not take that either; "
        f"{_only(_declared(close[0]))}."
    )


def check_names(names: Iterable[str], spec: ModelSpec, *, keywords: Collection[str]) -> None:
    """Refuse any of ``names`` (keywords beyond the caller's own) that is not an option ``spec``
    takes: another back end's option says who takes it; an unknown one gets the closest name
    and the list of what is allowed (``keywords``: the caller's own, allowed too)."""
    own = [o.name for o in options_for(spec)]
    for name in names:
        if name in own or name in _BY_NAME:  # fields are ``check_taken``'s
            continue
        declared = _declared(name)
        if declared:
            raise _not_taken(declared, spec)
        allowed = [k for k in keywords if k not in _BY_NAME or _admits(_BY_NAME[k], spec)]
        allowed += [o for o in own if o not in allowed]
        raise InvalidRequestError(
            f"{spec.display_name} does not take {name!r}.{_suggestion(name, allowed, spec)} "
            f"Allowed keywords: {', '.join(allowed)}."
        )


def applicable(values: Mapping[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """The fields of ``values`` that ``spec`` takes and that are set (and, for a field that
    needs another, only with that one set): what to send for that model, nothing stale."""
    out: dict[str, Any] = {}
    for f in FIELDS:
        value = values.get(f.name)
        if f.name not in values or not is_set(value) or not _admits(f, spec):
            continue
        if f.needs is not None and not is_set(values.get(f.needs)):
            continue
        out[f.name] = value
    return out


# -- signatures ------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def with_request_fields(*, exclude: Collection[str] = ()) -> Callable[[F], F]:
    """Show the request fields in ``func``'s signature (``help``, ``inspect.signature``).

    ``func`` takes them through its ``**params``; they are inserted as keyword-only
    parameters, with their annotations and defaults, after its positional parameters and
    before its own keyword-only ones. The prompt (``func`` names its prompt or prompts
    itself), fields it names, and ``exclude`` are left out.
    """

    def apply(func: F) -> F:
        named = {"prompt", *inspect.signature(func).parameters, *exclude}
        kinds = inspect.Parameter
        return show_keywords(
            func,
            [
                kinds(f.name, kinds.KEYWORD_ONLY, default=f.default, annotation=f.annotation)
                for f in FIELDS
                if f.name not in named
            ],
        )

    return apply


def keywords_of(func: Callable[..., Any]) -> tuple[str, ...]:
    """The names ``func`` takes by keyword, as its signature shows them (``**`` left out)."""
    kinds = inspect.Parameter
    return tuple(
        p.name
        for p in inspect.signature(func).parameters.values()
        if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
    )
