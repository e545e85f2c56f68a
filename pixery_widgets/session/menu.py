"""The model menu: a pure function of the server's status and which keys are set.

| server                               | menu                                           |
|--------------------------------------|------------------------------------------------|
| SELFHOSTED_API_URL not set           | cloud models only                              |
| set, check still running             | cloud, then local greyed "checking…"           |
| set, unreachable                     | cloud, then local greyed "offline"             |
| set, healthy (or busy drawing ours)  | local first, then cloud                        |

Greyed entries carry their reason and cannot be chosen. ``pick_selection``
holds the rule for what stays selected when the menu reorders.

Several servers: the local models are the union of their menus; a model is
enabled when a server that is up has it downloaded, and its label says which
servers have it loaded ("pony · loaded on 2", numbered as SELFHOSTED_API_URL
lists them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..core.catalog import cloud_models, local_model_spec
from ..core.config import load_settings, missing_key_reason
from ..core.types import SelfHostedStatus, ServerState
from ..providers.pool import has_model

__all__ = ["CLOUD_GROUP", "MenuEntry", "build_menu", "model_menu", "pick_selection"]

CLOUD_GROUP = "Cloud"


@dataclass(frozen=True)
class MenuEntry:
    """One line of the model menu."""

    id: str
    label: str
    provider: str
    enabled: bool
    reason: str | None
    group: str
    loaded: bool = False

    @property
    def is_local(self) -> bool:
        return self.provider == "selfhosted"

    def text(self) -> str:
        """The label with its reason, as a plain dropdown would show it."""
        return f"{self.label} — {self.reason}" if self.reason else self.label


def _local_group(status: SelfHostedStatus) -> str:
    gpu = status.health.gpu_name if status.health else None
    return f"Local · {gpu}" if gpu else "Local"


def _is_loaded(status: SelfHostedStatus, name: str) -> bool:
    info = status.models.get(name) if status.models else None
    return bool((info and info.loaded) or (status.health and status.health.current_model == name))


def _local_entries(status: SelfHostedStatus) -> list[MenuEntry]:
    group = _local_group(status)
    state = status.state
    entries = []
    for name in status.local_models:
        spec = local_model_spec(name)
        info = status.models.get(name) if status.models else None
        loaded = _is_loaded(status, name)
        label = f"{spec.display_name} (loaded)" if loaded else spec.display_name
        if state is ServerState.CHECKING:
            enabled, reason = False, "checking…"
        elif state is ServerState.OFFLINE:
            enabled, reason = False, "offline"
        elif info is not None and not info.downloaded:
            enabled, reason = False, "not downloaded"
        else:
            enabled, reason = True, None
        entries.append(MenuEntry(name, label, "selfhosted", enabled, reason, group, loaded))
    return entries


def _pool_group(servers: tuple[SelfHostedStatus, ...]) -> str:
    gpus = {s.health.gpu_name if s.health is not None else None for s in servers}
    if len(gpus) == 1 and None not in gpus:  # every server answered, all with one GPU
        return f"Local · {len(servers)} × {gpus.pop()}"
    return f"Local · {len(servers)} servers"


def _pool_entries(status: SelfHostedStatus) -> list[MenuEntry]:
    """The union of the servers' menus; enabled where a server that is up has it downloaded."""
    servers = status.servers
    group = _pool_group(servers)
    entries = []
    for name in status.local_models:
        spec = local_model_spec(name)
        up = [s for s in servers if s.reachable and name in s.local_models]
        has = [s for s in up if has_model(s, name) is not False]
        loaded_on = [
            str(n) for n, s in enumerate(servers, 1) if s.reachable and _is_loaded(s, name)
        ]
        label = spec.display_name + (f" · loaded on {', '.join(loaded_on)}" if loaded_on else "")
        if has:
            enabled, reason = True, None
        elif up:
            enabled, reason = False, "not downloaded"
        elif any(s.state is ServerState.CHECKING for s in servers):
            enabled, reason = False, "checking…"
        else:
            enabled, reason = False, "offline"
        entries.append(
            MenuEntry(name, label, "selfhosted", enabled, reason, group, bool(loaded_on))
        )
    return entries


def _cloud_entries(keys: Iterable[str]) -> list[MenuEntry]:
    have = set(keys)
    entries = []
    for spec in cloud_models():
        if spec.provider in have:
            enabled, reason = True, None
        else:
            enabled, reason = False, missing_key_reason(spec.provider)
        entries.append(
            MenuEntry(spec.id, spec.display_name, spec.provider, enabled, reason, CLOUD_GROUP)
        )
    return entries


def build_menu(status: SelfHostedStatus, keys: Iterable[str]) -> list[MenuEntry]:
    """The ordered menu for this status and these providers' keys (pure)."""
    cloud = _cloud_entries(keys)
    if status.state is ServerState.NOT_CONFIGURED:
        return cloud
    local = _pool_entries(status) if status.servers else _local_entries(status)
    if status.reachable:
        return local + cloud
    return cloud + local


def model_menu(status: SelfHostedStatus, keys: Iterable[str] | None = None) -> list[MenuEntry]:
    """The ordered menu; ``keys`` defaults to the providers whose key is configured now."""
    if keys is None:
        keys = load_settings().providers_with_keys
    return build_menu(status, keys)


def pick_selection(
    entries: Sequence[MenuEntry], current: str | None, *, user_chose: bool
) -> str | None:
    """What the menu should have selected after a (re)build.

    A choice the user made is never changed while it is still listed. Before
    the user chooses, a healthy server makes its first usable local model the
    default; otherwise the current default stays if usable, else the first
    usable entry.
    """
    ids = {e.id: e for e in entries}
    if user_chose and current in ids:
        return current
    enabled = [e for e in entries if e.enabled]
    if not enabled:
        return current if current in ids else None
    first_local = next((e for e in enabled if e.is_local), None)
    if first_local is not None and entries and entries[0].is_local:
        return first_local.id
    if current in ids and ids[current].enabled:
        return current
    return enabled[0].id
