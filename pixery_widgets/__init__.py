"""pixery-widgets: image generation as a first-class citizen of Jupyter.

    import pixery_widgets as px
    px.PixeryPanel()                                  # the panel
    g = px.generate("a lighthouse at dusk", model="animagine", seed=7)

Importing this package does no network I/O and patches nothing.
"""

from __future__ import annotations

from ._api import agenerate, generate
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


def check_selfhosted() -> SelfHostedStatus:
    """Sync twin of ``acheck_selfhosted``."""
    return run_sync(acheck_selfhosted())


__version__ = "0.1.0"

__all__ = [
    "CATALOG",
    "SDXL_SIZES",
    "ArchiveError",
    "AuthenticationError",
    "BadResponseError",
    "ConfigurationError",
    "ConnectionFailedError",
    "ContentRefusedError",
    "CostLimitError",
    "Generation",
    "GenerationRequest",
    "HealthInfo",
    "ImageDecodeError",
    "InvalidRequestError",
    "LocalModelInfo",
    "MenuEntry",
    "MissingAPIKeyError",
    "ModelSpec",
    "ModelUnavailableError",
    "PixeryError",
    "RateLimitError",
    "RequestRejectedError",
    "Secret",
    "SelfHostedStatus",
    "ServerError",
    "ServerState",
    "ServerTimeoutError",
    "Settings",
    "UnknownLoraError",
    "UnknownModelError",
    "__version__",
    "acheck_selfhosted",
    "agenerate",
    "check_selfhosted",
    "generate",
    "load_settings",
    "model_menu",
    "resolve_model",
    "session_ledger",
]
