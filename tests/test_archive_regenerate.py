"""A record replays only what its model takes: a value an older release recorded and never
sent (steps on a Gemini image) would now be refused, so it is left out of the replay."""

from __future__ import annotations

import json
from pathlib import Path

from cloud_fixtures import *  # noqa: F403 - the fixtures: mock, settings, no_keys, sleeps
from cloud_fixtures import gemini_image, gemini_url, run

from pixery_widgets.archive import Archive, add_text_chunks
from pixery_widgets.core import schema
from pixery_widgets.core.catalog import CATALOG
from pixery_widgets.session.validation import build_request
from tests.test_archive import png_bytes

OLD_ID = "20261201-090000-0ld6e000"


def old_gemini_record(root: Path) -> None:
    """A Gemini image as the first release archived it (its JSON as that release wrote it):
    the request holds steps, a CFG scale, a negative prompt and a seed, which that release
    accepted for Gemini and dropped; and provider options, one Gemini does not take."""
    request = {
        "prompt": "a lighthouse, watercolour", "negative_prompt": "blurry",
        "model": "gemini-flash", "provider": "gemini", "width": 1344, "height": 768,
        "steps": 30, "cfg_scale": 7.0, "seed": 5, "lora": None, "lora_scale": None,
        "ip_adapter_scale": None, "reference_hash": None,
        "extra": {"image_size": "2K", "quality": "hd"},
    }  # fmt: skip
    info = {
        "id": OLD_ID, "created_at": "2026-12-01T09:00:00+00:00",
        "prompt": request["prompt"], "negative_prompt": "blurry", "model": "gemini-flash",
        "provider": "gemini", "seed": None, "width": 1344, "height": 768, "steps": 30,
        "cfg_scale": 7.0, "sampler": None, "lora": None, "lora_scale": None,
        "reference_hash": None, "elapsed_s": 4.2, "cost_usd": 0.039, "batch_id": None,
        "request": request, "server_parameters": {"api_id": "gemini-2.5-flash-image"},
        "format": 1,
    }  # fmt: skip
    folder = root / "images" / "2026-12-01"
    folder.mkdir(parents=True)
    png = add_text_chunks(png_bytes(), {"pixery": json.dumps(info)})
    (folder / f"{OLD_ID}_gemini-flash.png").write_bytes(png)


def test_an_old_gemini_record_replays_only_what_gemini_takes(settings):
    root = settings.archive_dir
    old_gemini_record(root)
    arch = Archive(root, settings=settings)
    assert arch.reindex() == 1
    rec = arch.get(OLD_ID)
    assert rec.steps == 30 and rec.cfg_scale == 7.0  # kept as recorded
    kwargs = rec.regenerate_kwargs()
    assert kwargs == {
        "prompt": "a lighthouse, watercolour", "model": "gemini-flash",
        "width": 1344, "height": 768, "image_size": "2K",
    }  # fmt: skip
    spec = CATALOG["gemini-flash"]
    recorded = {**rec.params["request"], **rec.params["request"]["extra"]}
    left_out = {k for k, v in recorded.items() if v is not None and k not in kwargs}
    left_out -= {"provider", "extra"}  # not keywords
    assert left_out == {"negative_prompt", "steps", "cfg_scale", "seed", "quality"}
    assert not any(schema.takes(spec, k) for k in left_out)
    build_request(**kwargs)  # what agenerate checks first: accepted


def test_an_old_gemini_record_regenerates(mock, settings):
    route = mock.post(gemini_url()).respond(200, json=gemini_image())
    old_gemini_record(settings.archive_dir)
    arch = Archive(settings.archive_dir, settings=settings)
    arch.reindex()
    again = run(arch.get(OLD_ID).aregenerate(settings=settings))
    assert again.provider == "gemini" and again.request.steps is None
    sent = json.loads(route.calls.last.request.content)
    assert sent["generationConfig"]["imageConfig"]["imageSize"] == "2K"
    child = arch.get(again.id)
    assert child.parent_id == OLD_ID and child.params["request"]["extra"] == {"image_size": "2K"}
