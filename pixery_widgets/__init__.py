"""pixery-widgets: image generation as a first-class citizen of Jupyter.

    import pixery_widgets as px
    px.PixeryPanel()                                  # the panel
    g = px.generate("a lighthouse at dusk", model="animagine", seed=7)

Importing this package does no network I/O and patches nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._api import agenerate, generate
from ._archive import Archive, ArchiveRecord
from ._batch import Batch, JobFailure, arun_batch, last_batch, run_batch, start_batch
from ._catalog import CATALOG, SDXL_SIZES, ModelSpec, resolve_model
from ._config import Secret, Settings, load_settings
from ._errors import (
    ArchiveError,
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    ConnectionFailedError,
    ContentRefusedError,
    CostLimitError,
    ImageDecodeError,
    InvalidRequestError,
    MissingAPIKeyError,
    ModelUnavailableError,
    PixeryError,
    RateLimitError,
    RequestRejectedError,
    ServerError,
    ServerTimeoutError,
    UnknownLoraError,
    UnknownModelError,
)
from ._ledger import LEDGER as session_ledger
from ._menu import MenuEntry, model_menu
from ._status import acheck_selfhosted
from ._sync import run_sync
from ._types import (
    Generation,
    GenerationRequest,
    HealthInfo,
    LocalModelInfo,
    SelfHostedStatus,
    ServerState,
)

#: The widgets load ipywidgets and anywidget: imported on first use, so that
#: ``import pixery_widgets`` stays quick for scripts and batch jobs.
_WIDGETS = ("ImageOutput", "LoraPicker", "ModelDropdown", "PixeryPanel", "StatusIndicator")

if TYPE_CHECKING:
    from .widgets import ImageOutput, LoraPicker, ModelDropdown, PixeryPanel, StatusIndicator


def __getattr__(name: str) -> object:
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'pixery_widgets' has no attribute {name!r}")


def check_selfhosted() -> SelfHostedStatus:
    """Sync twin of ``acheck_selfhosted``."""
    return run_sync(acheck_selfhosted())


__version__ = "0.1.0"

__all__ = [
    "CATALOG",
    "SDXL_SIZES",
    "Archive",
    "ArchiveError",
    "ArchiveRecord",
    "AuthenticationError",
    "BadResponseError",
    "Batch",
    "ConfigurationError",
    "ConnectionFailedError",
    "ContentRefusedError",
    "CostLimitError",
    "Generation",
    "GenerationRequest",
    "HealthInfo",
    "ImageDecodeError",
    "ImageOutput",
    "InvalidRequestError",
    "JobFailure",
    "LocalModelInfo",
    "LoraPicker",
    "MenuEntry",
    "MissingAPIKeyError",
    "ModelDropdown",
    "ModelSpec",
    "ModelUnavailableError",
    "PixeryError",
    "PixeryPanel",
    "RateLimitError",
    "RequestRejectedError",
    "Secret",
    "SelfHostedStatus",
    "ServerError",
    "ServerState",
    "ServerTimeoutError",
    "Settings",
    "StatusIndicator",
    "UnknownLoraError",
    "UnknownModelError",
    "__version__",
    "acheck_selfhosted",
    "agenerate",
    "arun_batch",
    "check_selfhosted",
    "generate",
    "last_batch",
    "load_settings",
    "model_menu",
    "resolve_model",
    "run_batch",
    "session_ledger",
    "start_batch",
]
