"""The model-menu rule of DESIGN.md section 1, one table row per situation."""

from __future__ import annotations

import pytest

from pixery_widgets.core.catalog import cloud_models
from pixery_widgets.core.types import HealthInfo, LocalModelInfo, SelfHostedStatus, ServerState
from pixery_widgets.session.menu import build_menu, model_menu, pick_selection

URL = "http://203.0.113.7:8000"
CLOUD_IDS = [spec.id for spec in cloud_models()]
KNOWN_THREE = ["animagine", "pony", "noobai"]


def health(models=("animagine", "pony", "noobai"), current="animagine", gpu="RTX 4090"):
    return HealthInfo(
        status="healthy" if current else "no_model_loaded",
        current_model=current,
        available_models=tuple(models),
        gpu_name=gpu,
        vram_allocated_gb=6.9,
        idle_seconds=3,
        idle_timeout_minutes=60,
    )


def models(**downloaded):
    return {
        name: LocalModelInfo(name=name, downloaded=ok, loaded=False)
        for name, ok in downloaded.items()
    }


NOT_CONFIGURED = SelfHostedStatus(ServerState.NOT_CONFIGURED)
CHECKING = SelfHostedStatus(ServerState.CHECKING, url=URL)
CHECKING_KNOWN = SelfHostedStatus(
    ServerState.CHECKING, url=URL, known_models=("animagine", "mystery-xl")
)
OFFLINE = SelfHostedStatus(ServerState.OFFLINE, url=URL, reason="connection refused")
OFFLINE_KNOWN = SelfHostedStatus(
    ServerState.OFFLINE, url=URL, reason="timed out", known_models=("pony",)
)
HEALTHY = SelfHostedStatus(
    ServerState.HEALTHY,
    url=URL,
    health=health(),
    models=models(animagine=True, pony=True, noobai=True),
    loras=("detail_tweaker",),
)
HEALTHY_PONY_MISSING = SelfHostedStatus(
    ServerState.HEALTHY,
    url=URL,
    health=health(),
    models=models(animagine=True, pony=False, noobai=True),
)
HEALTHY_NOTHING_LOADED = SelfHostedStatus(
    ServerState.HEALTHY, url=URL, health=health(current=None, gpu=None), models=None
)
HEALTHY_UNKNOWN_MODEL = SelfHostedStatus(
    ServerState.HEALTHY,
    url=URL,
    health=health(models=("animagine", "pony", "noobai", "mystery-xl")),
)
BUSY = SelfHostedStatus(ServerState.BUSY, url=URL, known_models=("animagine", "pony", "noobai"))


def ids(entries):
    return [e.id for e in entries]


def greyed(entries):
    return {e.id: e.reason for e in entries if not e.enabled}


# (name, status, keys, expected order, expected greyed {id: reason} for local entries)
MENU_TABLE = [
    ("url not set: cloud models only", NOT_CONFIGURED, set(), CLOUD_IDS, {}),
    (
        "check running: cloud, then the known three greyed 'checking…'",
        CHECKING,
        set(),
        CLOUD_IDS + KNOWN_THREE,
        dict.fromkeys(KNOWN_THREE, "checking…"),
    ),
    (
        "check running after an earlier answer: the server's own list",
        CHECKING_KNOWN,
        set(),
        [*CLOUD_IDS, "animagine", "mystery-xl"],
        {"animagine": "checking…", "mystery-xl": "checking…"},
    ),
    (
        "unreachable: cloud, then local greyed 'offline'",
        OFFLINE,
        set(),
        CLOUD_IDS + KNOWN_THREE,
        dict.fromkeys(KNOWN_THREE, "offline"),
    ),
    (
        "unreachable after an earlier answer: the last list it gave",
        OFFLINE_KNOWN,
        set(),
        [*CLOUD_IDS, "pony"],
        {"pony": "offline"},
    ),
    ("healthy: local models first, then cloud", HEALTHY, set(), KNOWN_THREE + CLOUD_IDS, {}),
    (
        "healthy, a checkpoint missing: greyed 'not downloaded'",
        HEALTHY_PONY_MISSING,
        set(),
        KNOWN_THREE + CLOUD_IDS,
        {"pony": "not downloaded"},
    ),
    (
        "no_model_loaded counts as healthy",
        HEALTHY_NOTHING_LOADED,
        set(),
        KNOWN_THREE + CLOUD_IDS,
        {},
    ),
    (
        "a model the package never heard of is shown",
        HEALTHY_UNKNOWN_MODEL,
        set(),
        [*KNOWN_THREE, "mystery-xl", *CLOUD_IDS],
        {},
    ),
    (
        "busy with our own generation: still local first, usable",
        BUSY,
        set(),
        KNOWN_THREE + CLOUD_IDS,
        {},
    ),
]


@pytest.mark.parametrize(
    ("status", "keys", "order", "local_greyed"),
    [row[1:] for row in MENU_TABLE],
    ids=[row[0] for row in MENU_TABLE],
)
def test_menu_order_and_greying_follow_the_table(status, keys, order, local_greyed):
    entries = build_menu(status, keys)
    assert ids(entries) == order
    local = {e.id: e.reason for e in entries if e.is_local and not e.enabled}
    assert local == local_greyed
    for entry in entries:
        assert entry.enabled == (entry.reason is None)


@pytest.mark.parametrize(
    ("keys", "enabled_providers"),
    [
        (set(), set()),
        ({"fal"}, {"fal"}),
        ({"gemini", "openai"}, {"gemini", "openai"}),
        ({"gemini", "openai", "fal"}, {"gemini", "openai", "fal"}),
    ],
)
def test_cloud_entries_are_enabled_exactly_when_their_key_is_set(keys, enabled_providers):
    entries = [e for e in build_menu(NOT_CONFIGURED, keys) if not e.is_local]
    assert {e.provider for e in entries} == {"gemini", "openai", "fal"}
    for entry in entries:
        assert entry.enabled == (entry.provider in enabled_providers)
        if not entry.enabled:
            env = {"gemini": "GEMINI_API_KEY", "openai": "OPENAI_API_KEY", "fal": "FAL_KEY"}
            assert entry.reason == f"no API key (set {env[entry.provider]})"


def test_groups_read_local_with_gpu_name_then_cloud():
    entries = build_menu(HEALTHY, set())
    assert {e.group for e in entries if e.is_local} == {"Local · RTX 4090"}
    assert {e.group for e in entries if not e.is_local} == {"Cloud"}
    nameless = build_menu(HEALTHY_NOTHING_LOADED, set())
    assert {e.group for e in nameless if e.is_local} == {"Local"}


def test_the_loaded_model_is_marked():
    entries = {e.id: e for e in build_menu(HEALTHY, set())}
    assert entries["animagine"].loaded and "loaded" in entries["animagine"].label
    assert not entries["pony"].loaded and "loaded" not in entries["pony"].label


def test_model_menu_reads_keys_from_the_environment(monkeypatch):
    # conftest's autouse fixture already runs in tmp_path with HOME there (no .env read).
    for name in (
        "GEMINI_API_KEY",
        "GEMINI_API_SECRET_KEY",
        "OPENAI_API_KEY",
        "OPENAI_API_SECRET_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAL_KEY", "fal-test-key")
    enabled = {e.provider for e in model_menu(NOT_CONFIGURED) if e.enabled}
    assert enabled == {"fal"}


# -- what stays selected when the menu reorders -------------------------------------------

SELECTION_TABLE = [
    (
        "untouched, server turns healthy: first local becomes the default",
        HEALTHY,
        {"fal"},
        "flux-schnell",
        False,
        "animagine",
    ),
    (
        "untouched, first local not downloaded: first usable local",
        SelfHostedStatus(
            ServerState.HEALTHY,
            url=URL,
            health=health(),
            models=models(animagine=False, pony=True, noobai=True),
        ),
        set(),
        None,
        False,
        "pony",
    ),
    (
        "user chose a cloud model: a healthy server does not take it away",
        HEALTHY,
        {"fal"},
        "flux-schnell",
        True,
        "flux-schnell",
    ),
    (
        "user chose a local model: it stays when the server goes offline",
        OFFLINE,
        {"fal"},
        "pony",
        True,
        "pony",
    ),
    (
        "untouched, server offline: the usable default stays",
        OFFLINE,
        {"fal"},
        "flux-schnell",
        False,
        "flux-schnell",
    ),
    (
        "untouched, default became unusable: first usable entry",
        OFFLINE,
        {"fal"},
        "animagine",
        False,
        "flux-schnell",
    ),
    ("nothing usable at all: no selection", CHECKING, set(), None, False, None),
]


@pytest.mark.parametrize(
    ("status", "keys", "current", "user_chose", "expected"),
    [row[1:] for row in SELECTION_TABLE],
    ids=[row[0] for row in SELECTION_TABLE],
)
def test_selection_after_reorder(status, keys, current, user_chose, expected):
    entries = build_menu(status, keys)
    assert pick_selection(entries, current, user_chose=user_chose) == expected
