"""What a sweep may vary, and how its values read.

Kept apart from the plan (``sweep``) because the panel's typed values
(``sweep_text``) follow the same rules without crossing anything: which request
fields may be an axis and what kind their values are (from the request schema),
how a value is labelled on a sheet, a size given as a pair or as ``"832x1216"``,
and AUTOMATIC1111's Prompt S/R.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import schema
from ..core.errors import InvalidRequestError

__all__ = [
    "AxisField",
    "PromptSR",
    "as_size",
    "axis_field",
    "axis_names",
    "normalise_value",
    "prompt_sr",
    "shorten",
    "value_label",
]

#: Axes that are not a request field of their own name.
_SPECIAL = {"size": "Size", "prompt": "Prompt", "seed": "Seed", "model": "Model"}
#: Request fields that cannot be an axis, and why.
_NOT_AXES = {
    "provider": "it follows from the model",
    "references": "reference images are given once for the batch (reference=)",
    "reference": "reference images are given once for the batch (reference=)",
    "extra": "provider options are given once for the batch",
}


@dataclass(frozen=True)
class AxisField:
    """A field a sweep may vary: its name, its label on a sheet, and the kind of its values.

    ``kind`` is "int", "float", "text", "lora", "size", "prompt", "seed" or "model".
    """

    name: str
    label: str
    kind: str


def _request_fields() -> dict[str, schema.RequestField]:
    return {f.name: f for f in schema.FIELDS}


def axis_names() -> list[str]:
    """Every name ``vary=`` (or a sheet) accepts."""
    names = [n for n in _request_fields() if n not in _NOT_AXES]
    return [*names, "model", "size"]


def axis_field(name: str) -> AxisField:
    """The one place an axis name is checked and described, from the request schema.

    Any request field may vary but the references; and ``"size"``, a (width, height) pair.
    """
    fields = _request_fields()
    if name in _NOT_AXES:
        raise InvalidRequestError(f"{name} cannot be an axis of a sweep: {_NOT_AXES[name]}.")
    if name in _SPECIAL:
        kind = name
    elif name == "lora":
        kind = "lora"
    elif name in fields:
        declared = fields[name].type
        kind = declared.__name__ if declared in (int, float) else "text"
    else:
        raise InvalidRequestError(
            f"{name!r} is not a request field; a sweep can vary {', '.join(axis_names())}."
        )
    label = fields[name].label if name in fields and name not in _SPECIAL else _SPECIAL[name]
    return AxisField(name, label, kind)


# -- values and their labels -----------------------------------------------------------------


def shorten(text: str, limit: int = 40) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def value_label(kind: str, value: Any) -> str:
    """A value as a sheet shows it: ``4``, ``0.5``, ``832×1216``, ``none``, a short prompt."""
    if value is None:
        return "random" if kind == "seed" else "none"
    if kind == "size":
        return f"{value[0]}x{value[1]}"
    if kind == "prompt":
        return shorten(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


_SIZE_TEXT = re.compile(r"\s*(\d+)\s*[x×X*]\s*(\d+)\s*")


def as_size(value: Any) -> tuple[Any, Any]:
    """A (width, height) pair from a pair or a ``"832x1216"`` string (its numbers checked later)."""
    if isinstance(value, str):
        match = _SIZE_TEXT.fullmatch(value)
        if match:
            return int(match.group(1)), int(match.group(2))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    raise InvalidRequestError(
        f"A size is a (width, height) pair such as (832, 1216) or '832x1216', got {value!r}."
    )


def normalise_value(field: AxisField, value: Any) -> Any:
    """A value as a request takes it: a size as a pair, a LoRA "none" as no LoRA."""
    if field.kind == "size":
        return as_size(value)
    if field.kind == "lora" and (value is None or str(value).strip().lower() in ("", "none")):
        return None
    return value


# -- Prompt S/R --------------------------------------------------------------------------------


class PromptSR(list):  # type: ignore[type-arg]
    """Prompts made by Prompt S/R: ``words[i]`` stands where ``search`` stood in ``self[i]``."""

    def __init__(self, prompts: Iterable[str], search: str, words: Sequence[str]) -> None:
        super().__init__(prompts)
        self.search = search
        self.words = tuple(words)


def prompt_sr(prompt: str, search: str, replacements: str | Iterable[str]) -> PromptSR:
    """AUTOMATIC1111's Prompt S/R: ``prompt`` with ``search`` replaced by each replacement.

    The first prompt is ``prompt`` itself, unchanged, as in A1111; every occurrence is
    replaced. Use the result as a batch's prompts or as an axis
    (``vary={"prompt": px.prompt_sr(...)}``); a sheet labels each prompt by its word.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequestError("Prompt S/R needs a prompt to search in.")
    if not isinstance(search, str) or not search:
        raise InvalidRequestError("Prompt S/R needs a word (or words) to search for.")
    if search not in prompt:
        raise InvalidRequestError(
            f"Prompt S/R did not find {search!r} in the prompt {shorten(prompt, 60)!r}."
        )
    words = [replacements] if isinstance(replacements, str) else list(replacements)
    for word in words:
        if not isinstance(word, str):
            raise InvalidRequestError(f"Prompt S/R replacements are text, got {word!r}.")
    return PromptSR([prompt, *(prompt.replace(search, w) for w in words)], search, [search, *words])
