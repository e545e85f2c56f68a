"""The public names are a promise: pinned here, as httpx pins its own.

A name added to ``px.__all__`` is added here on purpose; one removed breaks
users' notebooks, so this test says so first.
"""

from __future__ import annotations

import subprocess
import sys

import pixery_widgets as px

PUBLIC = {
    "CATALOG", "SDXL_SIZES", "Archive", "ArchiveError", "ArchiveRecord", "AuthenticationError",
    "BadResponseError", "Batch", "ConfigurationError", "ConnectionFailedError",
    "ContentRefusedError", "CostLimitError", "Gallery", "Generation", "GenerationRequest", "HealthInfo",
    "ImageDecodeError", "ImageOutput", "InvalidRequestError", "JobFailure", "LocalModelInfo",
    "LoraPicker", "MenuEntry", "MissingAPIKeyError", "ModelDropdown", "ModelSpec",
    "ModelUnavailableError", "PixeryError", "PixeryPanel", "RateLimitError",
    "RequestRejectedError", "Secret", "SelfHostedStatus", "ServerError", "ServerState",
    "ServerTimeoutError", "Settings", "StatusIndicator", "UnknownLoraError", "UnknownModelError",
    "__version__", "acheck_selfhosted", "acheck_servers", "agenerate", "arun_batch",
    "check_selfhosted", "check_servers", "compare", "generate", "last_batch", "load_settings",
    "model_menu", "prompt_sr", "resolve_model", "run_batch", "session_ledger", "start_batch",
}  # fmt: skip


def test_the_public_names_are_exactly_the_pinned_ones():
    assert set(px.__all__) == PUBLIC
    assert len(px.__all__) == len(set(px.__all__))


def test_every_public_name_resolves():
    for name in px.__all__:
        assert getattr(px, name) is not None, name


def test_every_public_error_derives_from_the_one_base():
    errors = [getattr(px, n) for n in px.__all__ if n.endswith("Error")]
    assert errors
    assert all(issubclass(e, px.PixeryError) for e in errors)


def test_importing_the_package_loads_no_widgets():
    code = (
        "import sys, pixery_widgets; print('ipywidgets' in sys.modules, 'anywidget' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
