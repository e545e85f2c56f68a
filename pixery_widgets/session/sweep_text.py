"""The panel's X/Y section in words: typed values (with A1111's ranges) → a batch's arguments.

Values are separated by commas (a value holding a comma goes in double quotes).
Numbers may be written as AUTOMATIC1111's X/Y/Z plot writes them:

    1-3          → 1, 2, 3            (whole numbers count by one; 3-1 counts down)
    4-8 (+2)     → 4, 6, 8            (a step; (-2) counts down)
    4-8 [3]      → 4, 6, 8            (that many, evenly spaced, ends included)
    0.5-1 (+0.25)→ 0.5, 0.75, 1       (decimals too)

A size is ``832x1216``; a LoRA ``none`` is no LoRA; for Prompt S/R the first value is
the words to find in the prompt and the others replace them. Everything here is pure,
so its cases are a table in the tests.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import InvalidRequestError
from .sweep_values import as_size, axis_field, prompt_sr, value_label

__all__ = [
    "MAX_AXIS_VALUES",
    "MAX_PANEL_IMAGES",
    "PANEL_FIELDS",
    "PanelSweep",
    "panel_label",
    "panel_sweep",
    "parse_axis_values",
    "preview",
]

#: Most values one axis may expand to (a typo such as 1-10000 is refused, not drawn).
MAX_AXIS_VALUES = 100
#: Most images one press of Generate makes with the X/Y section (a 10 × 10 sweep).
MAX_PANEL_IMAGES = 100
#: The fields the panel offers as axes, in its menu's order.
PANEL_FIELDS: tuple[str, ...] = (
    "prompt",
    "seed",
    "steps",
    "cfg_scale",
    "size",
    "lora",
    "lora_scale",
    "model",
)

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_RANGE = re.compile(
    rf"\s*({_NUMBER})\s*-\s*({_NUMBER})\s*(?:\(\s*({_NUMBER})\s*\)|\[\s*(\d+)\s*\])?\s*"
)


def panel_label(name: str) -> str:
    """The field's name in the panel's menu ("Prompt S/R" for the prompt)."""
    return "Prompt S/R" if name == "prompt" else axis_field(name).label


def _items(text: str) -> list[str]:
    rows = list(csv.reader([text or ""], skipinitialspace=True))
    return [item.strip() for row in rows for item in row if item.strip()]


def _number(text: str, whole: bool, label: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidRequestError(f"{label}: {text!r} is not a number.") from None
    if whole and not value.is_integer():
        raise InvalidRequestError(f"{label}: {text!r} is not a whole number.")
    return value


def _expand(item: str, whole: bool, label: str) -> list[float]:
    """One typed item: a number, or one of A1111's ranges."""
    match = _RANGE.fullmatch(item)
    if match is None:
        return [_number(item, whole, label)]
    start, end = (_number(g, whole, label) for g in match.group(1, 2))
    if match.group(4) is not None:  # [n]: n values, evenly spaced
        count = int(match.group(4))
        if not 1 <= count <= MAX_AXIS_VALUES:
            raise InvalidRequestError(f"{label}: {item!r} asks for {count} values.")
        span = (end - start) / (count - 1) if count > 1 else 0.0
        return [start + k * span for k in range(count)]
    step = (
        _number(match.group(3), whole, label) if match.group(3) else math.copysign(1, end - start)
    )
    if step == 0 or (end - start) * step < 0:
        raise InvalidRequestError(f"{label}: the step of {item!r} never reaches its end.")
    count = math.floor((end - start) / step + 1e-9) + 1
    if count > MAX_AXIS_VALUES:
        raise InvalidRequestError(f"{label}: {item!r} gives {count} values.")
    return [start + k * step for k in range(count)]


def parse_axis_values(name: str, text: str) -> list[Any]:
    """What the user typed for an axis, as its values (ranges expanded); pure."""
    field = axis_field(name)
    label = panel_label(name)
    items = _items(text)
    if not items:
        raise InvalidRequestError(f"{label}: type its values, separated by commas.")
    values: list[Any]
    if field.kind in ("int", "seed", "float"):
        whole = field.kind != "float"
        numbers = [v for item in items for v in _expand(item, whole, label)]
        values = [int(v) if whole else round(v, 9) for v in numbers]
    elif field.kind == "size":
        values = []
        for item in items:
            try:
                values.append(as_size(item))
            except InvalidRequestError:
                raise InvalidRequestError(
                    f"{label}: {item!r} is not a size such as 832x1216."
                ) from None
    elif field.kind == "lora":
        values = [None if item.lower() == "none" else item for item in items]
    else:
        values = items
    if len(values) > MAX_AXIS_VALUES:
        raise InvalidRequestError(
            f"{label}: {len(values)} values; an axis takes at most {MAX_AXIS_VALUES}."
        )
    return values


@dataclass(frozen=True)
class PanelSweep:
    """A batch's arguments for the panel's X/Y rows: prompt, model(s), the other keywords."""

    prompts: str
    model: str | tuple[str, ...]
    kwargs: dict[str, Any]
    vary: dict[str, Any]
    x: str
    y: str | None
    images: int


_SETS = {"size": ("width", "height"), "prompt": ()}


def panel_sweep(
    prompt: str,
    model: str,
    kwargs: Mapping[str, Any],
    rows: Sequence[tuple[str, str]],
    *,
    count: int = 1,
) -> PanelSweep | None:
    """The panel's rows of (field, typed values) → a sweep's arguments; ``None`` if none is set.

    The form's own value of a field that varies is left out; ``count`` images per cell
    (consecutive seeds) multiply the sweep, up to ``MAX_PANEL_IMAGES``.
    """
    rows = [(name, text) for name, text in rows if name]
    if not rows:
        return None
    names = [name for name, _ in rows]
    if len(set(names)) != len(names):
        raise InvalidRequestError("X and Y are the same field; pick two different ones.")
    own = dict(kwargs)
    vary: dict[str, Any] = {}
    models: str | tuple[str, ...] = model
    images = count
    for name, text in rows:
        values = parse_axis_values(name, text)
        images *= len(values)
        if name == "model":
            models = tuple(values)
            continue
        if name == "prompt":  # the first value is the words to find; it keeps its place
            vary["prompt"] = prompt_sr(prompt, values[0], values[1:])
        else:
            vary[name] = values
        for key in _SETS.get(name, (name,)):
            own.pop(key, None)
    if images > MAX_PANEL_IMAGES:
        raise InvalidRequestError(
            f"This sweep makes {images} images; the panel makes at most {MAX_PANEL_IMAGES} at a "
            "time (run bigger ones with px.run_batch(..., vary=...))."
        )
    return PanelSweep(
        prompt, models, own, vary, names[0], names[1] if len(names) > 1 else None, images
    )


def preview(rows: Sequence[tuple[str, str]]) -> tuple[str, bool]:
    """A line on what the rows make, e.g. "CFG scale 4, 6, 8 × LoRA none, pixel_art: 6 images",
    and whether they can be made; pure, so the panel can say it while the user types."""
    parts, images = [], 1
    for name, text in ((n, t) for n, t in rows if n):
        try:
            values = parse_axis_values(name, text)
        except InvalidRequestError as exc:
            return exc.message, False
        kind = axis_field(name).kind
        shown = [value_label(kind, v) for v in values]
        listed = ", ".join(shown[:6]) + (f", … ({len(shown)})" if len(shown) > 6 else "")
        parts.append(f"{panel_label(name)} {listed}")
        images *= len(values)
    if not parts:
        return "Pick a field for X (and Y) and type its values.", False
    return f"{' × '.join(parts)}: {images} image{'s' if images != 1 else ''}", True
