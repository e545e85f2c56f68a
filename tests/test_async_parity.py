"""Every sync twin takes exactly what its async original takes.

The sync functions are thin wrappers (``run_sync``) over the async core; a
parameter added to one and forgotten in the other would be silently missing in
scripts or in notebooks. Pairs are found in the public API (``px.__all__`` and the
methods of its classes), so a new ``a*`` function without a matching twin, or a
twin that drifts, fails here.
"""

from __future__ import annotations

import inspect

import pytest

import pixery_widgets as px
from pixery_widgets.core import schema

#: Pairs that must be found (the search below could otherwise find nothing and pass).
KNOWN = {
    "agenerate/generate",
    "arun_batch/run_batch",
    "acheck_selfhosted/check_selfhosted",
    "ArchiveRecord.aregenerate/regenerate",
    "Batch.aretry_failed/retry_failed",
    "Archive.asave/save",
    "ImageOutput.ashow_generation/show_generation",
}


def public_pairs() -> dict[str, tuple[object, object]]:
    pairs: dict[str, tuple[object, object]] = {}
    for name in px.__all__:
        obj = getattr(px, name)
        if inspect.iscoroutinefunction(obj) and name.startswith("a") and name[1:] in px.__all__:
            pairs[f"{name}/{name[1:]}"] = (obj, getattr(px, name[1:]))
        if inspect.isclass(obj):
            for attr, method in vars(obj).items():
                twin = vars(obj).get(attr[1:])
                if attr.startswith("a") and inspect.iscoroutinefunction(method) and twin:
                    pairs[f"{name}.{attr}/{attr[1:]}"] = (method, twin)
    return pairs


def parameters(func: object) -> list[tuple[str, object, object, object]]:
    return [
        (p.name, p.kind, p.default, p.annotation)
        for p in inspect.signature(func).parameters.values()  # type: ignore[arg-type]
    ]


def test_every_known_pair_is_found():
    assert set(public_pairs()) >= KNOWN


@pytest.mark.parametrize("pair", sorted(public_pairs()))
def test_a_sync_twin_has_its_async_originals_parameters(pair):
    async_fn, sync_fn = public_pairs()[pair]
    assert parameters(sync_fn) == parameters(async_fn)
    assert not inspect.iscoroutinefunction(sync_fn)


def test_the_background_batch_takes_what_the_awaited_one_takes():
    assert parameters(px.start_batch) == parameters(px.arun_batch)


def keyword_names(func: object) -> set[str]:
    kinds = (inspect.Parameter.KEYWORD_ONLY,)
    return {n for n, kind, _d, _a in parameters(func) if kind in kinds}


REQUEST_FIELDS = {f.name for f in schema.FIELDS} - {"prompt"}  # the prompt is positional


def test_agenerate_takes_the_schemas_fields_and_its_own_few_keywords():
    assert keyword_names(px.agenerate) == REQUEST_FIELDS | {"settings", "archive"}
    positional = [n for n, kind, _d, _a in parameters(px.agenerate)][:2]
    assert positional == ["prompt", "model"]


def test_the_batch_takes_the_schemas_fields_with_seeds_for_seed():
    batch_own = {"seeds", "concurrency", "out_dir", "archive", "max_cost_usd", "progress", "vary"}
    assert keyword_names(px.arun_batch) == REQUEST_FIELDS - {"seed"} | batch_own | {"settings"}


@pytest.mark.parametrize("func", [px.generate, px.run_batch])
def test_help_shows_every_field_with_its_type_and_default(func):
    shown = str(inspect.signature(func))
    for f in schema.FIELDS:
        if f.name in keyword_names(func):
            assert f"{f.name}: '{f.annotation}' = {f.default!r}" in shown, f.name
    assert "lora_scale: 'float' = 0.8" in shown and "width: 'int' = 1024" in shown
