"""The widgets: the panel and its four parts, each usable on its own.

Importing this imports ipywidgets and anywidget; ``import pixery_widgets``
does not (its ``PixeryPanel`` & co. load this on first use).
"""

from __future__ import annotations

from .image_output import ImageOutput
from .lora import LoraPicker
from .model_dropdown import ModelDropdown
from .panel import PixeryPanel
from .status import StatusIndicator

__all__ = ["ImageOutput", "LoraPicker", "ModelDropdown", "PixeryPanel", "StatusIndicator"]
