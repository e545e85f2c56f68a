"""The LoRA picker: "none" first, then the server's LoRAs, and a scale slider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from ..core import schema
from ..core.types import DEFAULT_LORA_SCALE
from ..session.validation import RANGES
from .styles import Styles, muted

__all__ = ["NO_LORA", "LoraPicker"]

NO_LORA = "none"


class LoraPicker(w.HBox):
    """Which LoRA (if any) and how strongly; ``lora`` is ``None`` for "none".

    ``show(loras, enabled=, note=)`` sets what the server offers; the panel
    enables it only for a local model on a reachable server.
    """

    def __init__(self, loras: Sequence[str] = (), *, enabled: bool = True, **kwargs: Any):
        self.choice = w.Dropdown(
            options=[NO_LORA],
            value=NO_LORA,
            description=schema.field("lora").label,
            layout=w.Layout(width="220px"),
            style={"description_width": "40px"},
        )
        self.scale = w.FloatSlider(
            value=DEFAULT_LORA_SCALE,
            min=RANGES["lora_scale"][0],
            max=RANGES["lora_scale"][1],
            step=0.05,
            description="scale",
            readout_format=".2f",
            continuous_update=False,
            layout=w.Layout(width="240px"),
            style={"description_width": "40px"},
        )
        self.note = w.HTML(layout=w.Layout(flex="1 1 auto"))
        super().__init__([self.choice, self.scale, self.note, Styles()], **kwargs)
        self.layout.align_items = "center"
        self.add_class("pixery")
        self.add_class("pixery-lora")
        self.choice.observe(self._on_choice, "value")
        self.show(loras, enabled=enabled)

    @property
    def lora(self) -> str | None:
        value = self.choice.value
        return None if value in (None, NO_LORA) or self.choice.disabled else value

    @property
    def lora_scale(self) -> float:
        return float(self.scale.value)

    @property
    def enabled(self) -> bool:
        return not self.choice.disabled

    def show(self, loras: Sequence[str], *, enabled: bool, note: str = "") -> None:
        """Offer ``loras`` (a LoRA still offered stays chosen)."""
        options = [NO_LORA, *[name for name in loras if name != NO_LORA]]
        current = self.choice.value
        if list(self.choice.options) != options:
            self.choice.options = options
        self.choice.value = current if current in options else NO_LORA
        self.choice.disabled = not enabled
        self.scale.disabled = not enabled or self.choice.value == NO_LORA
        if enabled and not loras and not note:
            note = "Your server has no LoRAs."
        self.note.value = muted(note, small=True) if note else ""

    def _on_choice(self, change: dict[str, Any]) -> None:
        self.scale.disabled = self.choice.disabled or change["new"] == NO_LORA
