"""What the panel's form shows for the chosen model beyond which fields it takes.

Which request fields a model takes is the schema's (``core.schema.takes``; the
widgets' ``RequestForm.fit`` hides the rest). These are the other rules, pure,
over the model's catalog entry and the server's status: the steps and CFG
prefilled from the server's ``/models``, and why LoRAs are off.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.catalog import ModelSpec
from ..core.types import SelfHostedStatus

__all__ = ["FormView", "StepsCfgPrefill", "form_view"]


@dataclass(frozen=True)
class FormView:
    """The chosen model's label, defaults and LoRAs, as the form shows them."""

    model: str | None
    label: str
    is_local: bool
    default_steps: int | None
    default_cfg: float | None
    lora_enabled: bool
    loras: tuple[str, ...]
    lora_note: str
    can_generate: bool


def _lora_note(is_local: bool, status: SelfHostedStatus) -> str:
    if not is_local:
        return "LoRAs work with a model on your own server."
    if not status.reachable:
        return "LoRAs need your server to be reachable."
    if not status.loras:
        return "Your server has no LoRAs."
    return ""


def form_view(
    selection: str | None, spec: ModelSpec | None, status: SelfHostedStatus, *, running: bool
) -> FormView:
    """The form for ``selection`` (its catalog entry ``spec``) on the server as it is now."""
    is_local = bool(spec and spec.is_local)
    steps = cfg = None
    if spec is not None:
        info = status.models.get(spec.id) if status.models else None
        steps = info.default_steps if info and info.default_steps else spec.default_steps
        cfg = info.default_cfg if info and info.default_cfg else spec.default_cfg
    lora_enabled = is_local and status.reachable
    return FormView(
        model=selection,
        label=spec.display_name if spec else (selection or ""),
        is_local=is_local,
        default_steps=steps,
        default_cfg=cfg,
        lora_enabled=lora_enabled,
        loras=status.loras if lora_enabled else (),
        lora_note=_lora_note(is_local, status),
        can_generate=spec is not None and not running,
    )


class StepsCfgPrefill:
    """What the steps and CFG fields were last filled with, so a user's edit is kept."""

    def __init__(self) -> None:
        self._filled: tuple[str | None, int | None, float | None] | None = None

    def fill(
        self, view: FormView, shown_steps: int | None, shown_cfg: float | None
    ) -> tuple[int | None, float | None] | None:
        """New values for the fields, or ``None`` to leave them alone.

        Another model gets its defaults; the same model gets fresher defaults
        (from ``/models``) only while the fields still show what was filled in.
        """
        wanted = (view.default_steps, view.default_cfg)
        prev = self._filled
        if prev is not None and prev[0] == view.model:
            untouched = (shown_steps, shown_cfg) == (prev[1], prev[2])
            if not untouched or (prev[1], prev[2]) == wanted:
                return None
        self._filled = (view.model, *wanted)
        return wanted
