"""The providers layer: back ends behind one interface; ``get_provider`` finds one by name.

Beside the archive, above the core: a provider imports only ``core``. It turns
a request into HTTP (one shared httpx client) and an answer into a
``Generation``; the self-hosted server's status check lives here too
(``status.py``), beside the client it uses, with what several servers need:
checking them all at once (``servers.py``), picking one for an image
(``pool.py``) and counting what is in flight on each (``in_flight.py``).

Adding a back end: write a module with a ``Provider`` subclass and add one
line to ``_MODULES``. Modules are imported on first use so a kernel pays only
for the providers it talks to.
"""

from __future__ import annotations

import importlib

from ..core.errors import UnknownModelError
from ._base import Provider

__all__ = ["Provider", "get_provider"]

#: provider name → (module, class)
_MODULES: dict[str, tuple[str, str]] = {
    "selfhosted": (".selfhosted", "SelfHostedProvider"),
    "gemini": (".gemini", "GeminiProvider"),
    "openai": (".openai", "OpenAIProvider"),
    "fal": (".fal", "FalProvider"),
}

_instances: dict[str, Provider] = {}


def get_provider(name: str) -> Provider:
    """The provider object for ``name`` (one instance per process)."""
    if name not in _instances:
        try:
            module_name, class_name = _MODULES[name]
        except KeyError:
            raise UnknownModelError(
                f"Unknown provider {name!r}; known: {', '.join(_MODULES)}."
            ) from None
        module = importlib.import_module(module_name, __name__)
        _instances[name] = getattr(module, class_name)()
    return _instances[name]
