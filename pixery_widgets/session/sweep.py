"""Sweeps: any request field as an axis, crossed with a batch's prompts, seeds and models.

``vary={"cfg_scale": [4, 6, 8], "lora_scale": [0, 0.5, 1]}`` on ``run_batch`` and its
twins makes one image per combination. The results keep the nesting of the axes,
outermost first::

    prompt → seed → the vary= axes, in the order given → model

With no ``vary=`` that is a batch's own order (prompt, then seed, then model). Naming
``"prompt"`` or ``"seed"`` in ``vary=`` puts that axis at its place among the others:
``vary={"prompt": ...}`` wants the batch's prompt to be the first of those prompts (the
one the sweep starts from), ``vary={"seed": ...}`` wants no ``seeds=``. Models are
always given as ``model=[...]``. A self-hosted server still draws model by model (the
batch's scheduler groups its queue by model), so each checkpoint is loaded once.

Width and height go together in SDXL, so a size is one axis, ``"size"``, of
(width, height) pairs: ``vary={"size": [(1024, 1024), (832, 1216)]}`` ("832x1216"
strings too); ``"width"`` and ``"height"`` may also vary alone.

The vary= axes are lettered x, y, z in the order given (a contact sheet's default
axes). Before anything is sent, every value of every axis and then every image's whole
request is checked, and the first bad one is named by its place:
``cfg_scale=25 (x=3 of 3): CFG scale must be between 1.0 and 20.0, got 25.0.``

What may be an axis, how its values are labelled and ``prompt_sr`` (AUTOMATIC1111's
Prompt S/R) are in ``sweep_values``; the panel's typed values (A1111's ranges included)
are read in ``sweep_text``; the checks and the price of a sweep are in ``sweep_checks``.
"""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.catalog import ModelSpec
from ..core.errors import InvalidRequestError
from .jobs import Job
from .sweep_values import PromptSR, axis_field, normalise_value, shorten, value_label
from .validation import RANDOM_SEED_RANGE

__all__ = ["Axis", "Sweep", "axis_overrides", "placed", "plan_sweep"]

_LETTERS = ("x", "y", "z")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return str(value)


# -- axes and the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One axis of a sweep: a field, its values, and how a sheet labels each."""

    name: str
    label: str
    values: tuple[Any, ...]
    labels: tuple[str, ...]
    #: x, y or z for the first three vary= axes (a sheet's default axes), else None.
    letter: str | None = None

    def __len__(self) -> int:
        return len(self.values)

    def title(self, i: int) -> str:
        """``"CFG scale: 4"``: the field's label and the value's."""
        return f"{self.label}: {self.labels[i]}"

    def where(self, i: int) -> str:
        """``"cfg_scale=25 (x=3 of 3)"``: the value and its place on the axis."""
        place = (
            f"{self.letter}={i + 1} of {len(self)}" if self.letter else f"{i + 1} of {len(self)}"
        )
        return f"{self.name}={self.labels[i]} ({place})"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "letter": self.letter,
            "values": [_jsonable(v) for v in self.values],
            "labels": list(self.labels),
        }


@dataclass(frozen=True)
class Sweep:
    """A batch's axes in nesting order (outermost first) and its jobs in that order."""

    axes: tuple[Axis, ...]
    jobs: tuple[Job, ...]
    #: The vary= axes' names, in the order given.
    order: tuple[str, ...] = ()

    def axis(self, name: str) -> Axis:
        for axis in self.axes:
            if axis.name == name:
                return axis
        names = ", ".join(a.name for a in self.axes)
        raise InvalidRequestError(f"This batch has no axis {name!r}; its axes are {names}.")

    def position(self, name: str) -> int:
        return self.axes.index(self.axis(name))

    @property
    def varied(self) -> list[Axis]:
        """The axes with more than one value, in a sheet's default order: the vary= axes
        as given, then model, prompt and seed."""
        names = [*self.order, *(n for n in ("model", "prompt", "seed") if n not in self.order)]
        return [a for a in (self.axis(n) for n in names) if len(a) > 1]

    def where(self, job: Job) -> str:
        """A job's place on every varied axis, in words."""
        return ", ".join(
            axis.where(job.coords[k]) for k, axis in enumerate(self.axes) if len(axis) > 1
        )

    def describe(self) -> dict[str, Any]:
        return {"order": [a.name for a in self.axes], "axes": [a.describe() for a in self.axes]}


def _seed_list(seeds: int | Iterable[int | None] | None) -> list[int | None] | None:
    """``None`` → one back-end-chosen seed; an int n → n random seeds per prompt; else the seeds."""
    if seeds is None:
        return None
    if isinstance(seeds, bool):
        raise InvalidRequestError(f"seeds must be a count, a list of seeds or None, got {seeds!r}.")
    if isinstance(seeds, int):
        if seeds < 1:
            raise InvalidRequestError(f"seeds must be at least 1 when it is a count, got {seeds}.")
        return []  # drawn per prompt
    out = list(seeds)
    if not out:
        raise InvalidRequestError("seeds is empty; give at least one seed, a count, or None.")
    return out


def _seed_rows(prompts: int, seeds: int | Iterable[int | None] | None) -> list[list[int | None]]:
    """Each prompt's seeds: the same list for all, or a count drawn now for each prompt."""
    fixed = _seed_list(seeds)
    if fixed is None:
        return [[None]] * prompts
    if fixed:
        return [list(fixed)] * prompts
    assert isinstance(seeds, int)
    rng = random.SystemRandom()
    return [[rng.randrange(RANDOM_SEED_RANGE) for _ in range(seeds)] for _ in range(prompts)]


def _prompt_axis(prompts: Sequence[str]) -> Axis:
    if isinstance(prompts, PromptSR):
        return Axis("prompt", "Prompt S/R", tuple(prompts), prompts.words)
    return Axis("prompt", "Prompt", tuple(prompts), tuple(shorten(p) for p in prompts))


def _seed_axis(rows: list[list[int | None]]) -> Axis:
    if all(row == rows[0] for row in rows):
        return Axis("seed", "Seed", tuple(rows[0]), tuple(value_label("seed", s) for s in rows[0]))
    slots = range(len(rows[0]))  # each prompt drew its own: the axis is the slot
    return Axis("seed", "Seed", tuple(slots), tuple(f"#{k + 1}" for k in slots))


def _vary_axis(name: str, values: Any, k: int) -> Axis:
    field = axis_field(name)
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InvalidRequestError(f"vary[{name!r}] must be a list of values, got {values!r}.")
    items = list(values)
    if not items:
        raise InvalidRequestError(f"vary[{name!r}] is empty; give at least one value.")
    letter = _LETTERS[k] if k < len(_LETTERS) else None
    raw = Axis(name, field.label, tuple(items), tuple(repr(v) for v in items), letter)
    normal = []
    for i, value in enumerate(items):
        try:
            normal.append(normalise_value(field, value))
        except InvalidRequestError as exc:
            raise placed(exc, raw.where(i)) from None
    if isinstance(values, PromptSR):
        return Axis(name, "Prompt S/R", tuple(normal), values.words, letter)
    labels = tuple(value_label(field.kind, v) for v in normal)
    return Axis(name, field.label, tuple(normal), labels, letter)


def _check_vary(vary: Mapping[str, Any], params: Mapping[str, Any], seeds: Any) -> None:
    """Refuse what a sweep cannot mean: a field given twice, models or seeds in two places,
    or a strength that changes nothing."""
    for name in vary:
        if name == "model":
            raise InvalidRequestError(
                "Give the models as model=[...], not in vary=; a sheet still has the axis 'model'."
            )
        if name == "seed" and seeds is not None:
            raise InvalidRequestError("Give the seeds once: as seeds= or as vary={'seed': [...]}.")
        for key in ("width", "height") if name == "size" else (name,):
            if key in params:
                raise InvalidRequestError(
                    f"{key} is given both as {key}= and by vary[{name!r}]; give it once."
                )
            if name == "size" and key in vary:
                raise InvalidRequestError(f"vary[{key!r}] and vary['size'] both set the {key}.")
    if "lora_scale" in vary and not params.get("lora") and "lora" not in vary:
        raise InvalidRequestError(
            "vary['lora_scale'] changes nothing without a LoRA: give lora=... or vary 'lora' too."
        )
    if "ip_adapter_scale" in vary and params.get("reference") is None:
        raise InvalidRequestError(
            "vary['ip_adapter_scale'] changes nothing without a reference image (reference=...)."
        )


def axis_overrides(axis: Axis, value: Any) -> tuple[tuple[str, Any], ...]:
    """The request keywords one value of a vary= axis sets."""
    if axis.name == "size":
        return (("width", value[0]), ("height", value[1]))
    return ((axis.name, value),)


def plan_sweep(
    prompts: str | Sequence[str],
    specs: Sequence[ModelSpec],
    seeds: int | Iterable[int | None] | None,
    vary: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Sweep:
    """The axes and the jobs of a batch: prompts × seeds × the vary= axes × models, crossed in
    that nesting (see the module's docstring). Models without seed control get ``seed=None``."""
    vary = dict(vary or {})
    params = params or {}
    _check_vary(vary, params, seeds)
    vary_axes = [_vary_axis(name, values, k) for k, (name, values) in enumerate(vary.items())]
    prompt_list = [prompts] if isinstance(prompts, str) else list(prompts)
    if "prompt" in vary and prompt_list != [vary_axes[list(vary).index("prompt")].values[0]]:
        raise InvalidRequestError(
            "With vary={'prompt': [...]} the batch's prompt is the one the sweep starts from: "
            "pass the first of those prompts as the prompt."
        )
    shared = isinstance(prompts, PromptSR) or "prompt" in vary  # one set of seeds for all
    rows = _seed_rows(1 if shared else len(prompt_list), seeds if "seed" not in vary else None)
    axes: list[Axis] = []
    if "prompt" not in vary:
        axes.append(_prompt_axis(prompts if isinstance(prompts, PromptSR) else prompt_list))
    if "seed" not in vary:
        axes.append(_seed_axis(rows))
    axes += vary_axes
    axes.append(Axis("model", "Model", tuple(s.id for s in specs), tuple(s.id for s in specs)))
    at = {a.name: k for k, a in enumerate(axes)}
    settable = [a for a in vary_axes if a.name not in ("prompt", "seed")]
    jobs: list[Job] = []
    for coords in itertools.product(*(range(len(a)) for a in axes)):
        prompt = axes[at["prompt"]].values[coords[at["prompt"]]]
        if "seed" in vary:
            seed = axes[at["seed"]].values[coords[at["seed"]]]
        else:
            seed = rows[0 if shared else coords[at["prompt"]]][coords[at["seed"]]]
        spec = specs[coords[at["model"]]]
        overrides = tuple(
            pair for a in settable for pair in axis_overrides(a, a.values[coords[at[a.name]]])
        )
        jobs.append(
            Job(
                len(jobs),
                prompt,
                spec.id,
                spec.provider,
                seed if spec.takes_seed else None,
                overrides=overrides,
                coords=coords,
            )
        )
    return Sweep(tuple(axes), tuple(jobs), tuple(vary))


def placed(error: InvalidRequestError, where: str) -> InvalidRequestError:
    """The same refusal, its message led by the place it was found."""
    out = copy.copy(error)
    out.message = f"{where}: {error.message}"
    out.args = (out.message,)
    return out
