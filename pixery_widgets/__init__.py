"""pixery-widgets: image generation as a first-class citizen of Jupyter.

    import pixery_widgets as px
    px.PixeryPanel()                                  # the panel
    g = px.generate("a lighthouse at dusk", model="animagine", seed=7)

Importing this package does no network I/O and patches nothing.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .archive import Archive, ArchiveRecord, use_browser
from .core.catalog import CATALOG, SDXL_SIZES, ModelSpec, resolve_model
from .core.config import Secret, Settings, load_settings
from .core.errors import (
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
from .core.sync import run_sync
from .core.types import (
    Generation,
    GenerationRequest,
    HealthInfo,
    LocalModelInfo,
    SelfHostedStatus,
    ServerState,
)
from .providers.selfhosted import HEALTH_TIMEOUT
from .providers.servers import acheck_servers
from .providers.status import acheck_selfhosted
from .session.batch import Batch
from .session.batch_api import arun_batch, last_batch, run_batch, start_batch
from .session.generate import agenerate, generate
from .session.jobs import JobFailure
from .session.ledger import LEDGER as session_ledger
from .session.menu import MenuEntry, model_menu
from .session.progress import use_notebook_reporter
from .session.sweep_values import prompt_sr

#: The widgets load ipywidgets and anywidget: imported on first use, so that
#: ``import pixery_widgets`` stays quick for scripts and batch jobs.
_WIDGETS = (
    "Gallery",
    "ImageOutput",
    "LoraPicker",
    "ModelDropdown",
    "PixeryPanel",
    "StatusIndicator",
    "compare",
)

if TYPE_CHECKING:
    from .widgets import (
        Gallery,
        ImageOutput,
        LoraPicker,
        ModelDropdown,
        PixeryPanel,
        StatusIndicator,
        compare,
    )


def __getattr__(name: str) -> object:
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'pixery_widgets' has no attribute {name!r}")


def _notebook_progress() -> object | None:
    """The widgets' progress bar inside a kernel; a plain script never loads widgets."""
    if "IPython" not in sys.modules:
        return None
    from .widgets.progress import notebook_reporter

    return notebook_reporter()


use_notebook_reporter(_notebook_progress)


def _gallery(archive: Archive, **options: object) -> object:
    """``Archive.browse()``: the widgets' gallery, loaded on first use."""
    from .widgets import Gallery

    return Gallery(archive, **options)  # type: ignore[arg-type]


use_browser(_gallery)


def check_selfhosted(
    settings: Settings | None = None, *, timeout: float = HEALTH_TIMEOUT
) -> SelfHostedStatus:
    """Sync twin of ``acheck_selfhosted``."""
    return run_sync(acheck_selfhosted(settings, timeout=timeout))


def check_servers(
    settings: Settings | None = None, *, timeout: float = HEALTH_TIMEOUT
) -> tuple[SelfHostedStatus, ...]:
    """Sync twin of ``acheck_servers``: one status per server in SELFHOSTED_API_URL."""
    return run_sync(acheck_servers(settings, timeout=timeout))


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
    "Gallery",
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
    "acheck_servers",
    "agenerate",
    "arun_batch",
    "check_selfhosted",
    "check_servers",
    "compare",
    "generate",
    "last_batch",
    "load_settings",
    "model_menu",
    "prompt_sr",
    "resolve_model",
    "run_batch",
    "session_ledger",
    "start_batch",
]
