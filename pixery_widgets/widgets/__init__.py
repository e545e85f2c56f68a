"""The widgets layer, on top: the panel and its four parts, each usable on its own, and the
gallery (with its compare and details views).

The only layer that loads ipywidgets and anywidget (their front ends are in
``static/``). Widgets compose and display; the rules and the network are the
session layer's, which they read. Importing this imports ipywidgets and anywidget; ``import pixery_widgets``
does not (its ``PixeryPanel`` & co. load this on first use).
"""

from __future__ import annotations

from .compare import Compare, RecordDetails, compare
from .gallery import Gallery
from .image_output import ImageOutput
from .lora import LoraPicker
from .model_dropdown import ModelDropdown
from .panel import PixeryPanel
from .status import StatusIndicator

__all__ = [
    "Compare",
    "Gallery",
    "ImageOutput",
    "LoraPicker",
    "ModelDropdown",
    "PixeryPanel",
    "RecordDetails",
    "StatusIndicator",
    "compare",
]
