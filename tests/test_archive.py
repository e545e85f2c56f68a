"""The archive: atomic files with their parameters inside, an index that never lies."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

import pixery_widgets as px
from pixery_widgets.archive import (
    Archive,
    a1111_parameters,
    add_text_chunks,
    read_text_chunks,
)
from pixery_widgets.core.config import Secret, Settings
from pixery_widgets.core.errors import ArchiveError
from pixery_widgets.core.types import Generation, GenerationRequest
from pixery_widgets.session.ledger import LEDGER

SENTINELS = {"gemini": "gm-SENTINEL-1", "openai": "sk-SENTINEL-2", "fal": "fal-SENTINEL-3"}


def run(coro):
    return asyncio.run(coro)


def png_bytes(color=(200, 30, 30), size=(64, 48), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def make_generation(prompt="a red fox", seed=7, *, raw=None, references=(), **request_kw):
    request = GenerationRequest(
        prompt=prompt,
        model="animagine",
        provider="selfhosted",
        seed=seed,
        references=tuple(references),
        **request_kw,
    )
    server_params = {
        "prompt": prompt,
        "negative_prompt": "lowres",
        "width": 1024,
        "height": 1024,
        "steps": 28,
        "cfg_scale": 5.0,
        "model": "animagine",
    }
    return Generation(
        png_bytes=raw if raw is not None else png_bytes(),
        seed=seed,
        model="animagine",
        provider="selfhosted",
        params=server_params,
        elapsed_s=1.25,
        cost_usd=0.0,
        request=request,
    )


def idat(data: bytes) -> bytes:
    """The image data chunks, concatenated: what must never change."""
    out, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind in (b"IHDR", b"IDAT", b"PLTE", b"IEND"):
            out.append(data[pos : pos + 12 + length])
        pos += 12 + length
    return b"".join(out)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive(tmp_path / "arch", settings=Settings())


# -- PNG text chunks -------------------------------------------------------------------------


def test_text_chunks_are_inserted_without_touching_the_image_data():
    raw = png_bytes(size=(300, 200))
    out = add_text_chunks(raw, {"parameters": "a fox\nSteps: 28", "pixery": '{"a": 1}'})
    assert idat(out) == idat(raw)
    with Image.open(io.BytesIO(out)) as img:
        assert img.text["parameters"] == "a fox\nSteps: 28"
        assert img.text["pixery"] == '{"a": 1}'
        img.load()
        with Image.open(io.BytesIO(raw)) as orig:
            assert img.tobytes() == orig.tobytes()


def test_text_outside_latin1_is_written_as_itxt_and_read_back_by_pil():
    raw = png_bytes()
    out = add_text_chunks(raw, {"parameters": "猫の絵, 1girl"})
    assert b"iTXt" in out
    assert read_text_chunks(out)["parameters"] == "猫の絵, 1girl"
    with Image.open(io.BytesIO(out)) as img:
        assert img.text["parameters"] == "猫の絵, 1girl"


def test_existing_chunks_with_the_same_keyword_are_replaced_not_duplicated():
    once = add_text_chunks(png_bytes(), {"parameters": "old"})
    twice = add_text_chunks(once, {"parameters": "new"})
    assert twice.count(b"parameters") == 1
    assert read_text_chunks(twice) == {"parameters": "new"}


def test_add_text_chunks_refuses_what_is_not_a_png():
    with pytest.raises(ValueError):
        add_text_chunks(b"\xff\xd8\xff\xe0 jpeg", {"a": "b"})
    with pytest.raises(ValueError):
        add_text_chunks(png_bytes()[:-12], {"a": "b"})  # IEND cut off


def test_a1111_parameters_use_the_format_other_sd_tools_parse():
    text = a1111_parameters(
        {
            "prompt": "1girl, solo",
            "negative_prompt": "lowres",
            "steps": 28,
            "cfg_scale": 5.0,
            "seed": 7,
            "width": 832,
            "height": 1216,
            "model": "animagine",
            "lora": "detail_tweaker",
            "lora_scale": 0.8,
            "provider": "selfhosted",
        }
    )
    assert text.splitlines() == [
        "1girl, solo <lora:detail_tweaker:0.8>",  # the LoRA inline, as A1111 applies it
        "Negative prompt: lowres",
        "Steps: 28, Sampler: Euler a, CFG scale: 5, Seed: 7, Size: 832x1216, Model: animagine, "
        f"Version: v{px.__version__}",
    ]


def test_a_lora_at_scale_zero_is_written_as_zero_not_the_default():
    info = {"prompt": "x", "model": "animagine", "lora": "detail_tweaker", "lora_scale": 0.0}
    assert a1111_parameters(info).splitlines()[0] == "x <lora:detail_tweaker:0>"
    del info["lora_scale"]  # an old record without a scale: the default
    assert a1111_parameters(info).splitlines()[0] == "x <lora:detail_tweaker:0.8>"


# -- saving -----------------------------------------------------------------------------------


def test_save_writes_png_with_parameters_thumbnail_and_row(archive: Archive):
    g = make_generation()
    rec = archive.save(g, batch_id="b1", tags=["fox"])
    assert g.path == rec.path and g.path.is_file()
    assert g.id == rec.id
    data = g.path.read_bytes()
    assert idat(data) == idat(g.png_bytes)
    texts = read_text_chunks(data)
    assert texts["parameters"].startswith("a red fox\nNegative prompt: lowres\nSteps: 28")
    info = json.loads(texts["pixery"])
    assert info["id"] == rec.id and info["seed"] == 7 and info["batch_id"] == "b1"
    assert info["request"]["prompt"] == "a red fox"
    assert rec.thumbnail_bytes()[:3] == b"\xff\xd8\xff"  # made when first asked for...
    assert rec.thumb_path is not None and rec.thumb_path.read_bytes()[:3] == b"\xff\xd8\xff"

    row = archive.get(rec.id)
    assert (row.prompt, row.model, row.provider, row.seed) == (
        "a red fox",
        "animagine",
        "selfhosted",
        7,
    )
    assert (row.width, row.height, row.steps, row.cfg_scale) == (1024, 1024, 28, 5.0)
    assert row.negative_prompt == "lowres" and row.batch_id == "b1" and row.tags == ("fox",)
    assert row.path == g.path and row.elapsed_s == pytest.approx(1.25)


def _record_fsyncs(monkeypatch, root: Path) -> list[Path]:
    """Stand-in for the archive's fsync of one path; returns the paths under ``root`` it saw
    (an archive of an earlier test may still be finishing a round)."""
    from pixery_widgets.archive import files as archive_files

    synced: list[Path] = []
    monkeypatch.setattr(
        archive_files, "_fsync_path", lambda p: synced.append(p) if p.is_relative_to(root) else None
    )
    return synced


def test_a_saved_image_and_its_folder_are_fsynced_after_the_save_returns(archive, monkeypatch):
    synced = _record_fsyncs(monkeypatch, archive.root)
    g = make_generation()
    archive.save(g)
    archive.flush()
    assert synced == [g.path, g.path.parent]


def test_images_saved_while_a_sync_runs_share_one_folder_fsync(archive, monkeypatch):
    synced = _record_fsyncs(monkeypatch, archive.root)
    import threading

    release = threading.Event()
    archive._background.submit(release.wait, 10)  # the sync thread is busy meanwhile
    saved = [archive.save(make_generation(seed=n)).path for n in range(5)]
    assert synced == []  # nothing synced on the save's path
    release.set()
    archive.flush()
    assert synced == [*saved, saved[0].parent]  # every file, then the folder once


def test_index_uses_wal_and_has_the_documented_columns(archive: Archive):
    archive.save(make_generation())
    with sqlite3.connect(archive.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = {r[1] for r in conn.execute("PRAGMA table_info(generations)")}
        tag_columns = [r[1] for r in conn.execute("PRAGMA table_info(tags)")]
    assert {
        "id", "created_at", "prompt", "negative_prompt", "model", "provider", "seed", "width",
        "height", "steps", "cfg_scale", "lora", "lora_scale", "reference_hash", "elapsed_s",
        "cost_usd", "path", "thumb_path", "batch_id", "starred", "trashed_at", "parent_id",
    } <= columns  # fmt: skip
    assert tag_columns == ["record_id", "tag"]  # one row per tag, stored as typed


def test_jpeg_from_a_provider_is_archived_as_png_with_its_pixels(archive: Archive):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buf, format="JPEG")
    g = make_generation(raw=buf.getvalue())
    rec = archive.save(g)
    with Image.open(rec.path) as img, Image.open(io.BytesIO(g.png_bytes)) as orig:
        assert img.format == "PNG"
        assert img.convert("RGB").tobytes() == orig.convert("RGB").tobytes()
        assert "pixery" in img.text


def test_failed_write_leaves_no_file_no_row_and_says_why(archive: Archive, monkeypatch):
    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    g = make_generation()
    with pytest.raises(ArchiveError) as info:
        archive.save(g)
    err = info.value
    assert "Could not save the image to" in str(err) and "No space left on device" in str(err)
    assert err.generation is g  # the paid image is not lost
    assert g.path is None
    images = list((archive.root / "images").rglob("*"))
    assert [p for p in images if p.is_file()] == []  # neither final name nor temp file
    assert len(archive) == 0


def test_failed_index_insert_leaves_a_file_that_reindex_recovers(archive: Archive, monkeypatch):
    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Archive, "_insert", locked)
    g = make_generation(prompt="recover me")
    with pytest.raises(ArchiveError, match="reindex"):
        archive.save(g)
    monkeypatch.undo()
    files = list((archive.root / "images").rglob("*.png"))
    assert len(files) == 1 and len(archive) == 0

    fresh = Archive(archive.root, settings=Settings())
    assert fresh.reindex() == 1
    assert fresh.reindex() == 0
    (rec,) = fresh.records()
    assert rec.prompt == "recover me" and rec.seed == 7 and rec.path == files[0]


def test_no_api_key_reaches_any_archived_file(tmp_path: Path):
    settings = Settings(keys={k: Secret(v) for k, v in SENTINELS.items()}, archive_dir=tmp_path)
    arch = Archive(tmp_path, settings=settings)
    g = make_generation()
    assert not any(s in json.dumps(g.request.describe()) for s in SENTINELS.values())
    leaky = make_generation(prompt="echo")
    leaky.params["echo"] = f"Bearer {SENTINELS['openai']}"  # a back end echoing a header
    saved = [arch.save(g).path, arch.save(leaky).path]
    arch.close()
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert set(saved) <= set(files) and len(files) > len(saved), files  # images and the index
    for path in files:
        data = path.read_bytes()
        for secret in SENTINELS.values():
            assert secret.encode() not in data, f"{secret} found in {path}"


def test_reference_images_are_stored_by_hash_and_fed_back_to_regenerate(archive: Archive):
    ref = png_bytes((0, 255, 0))
    g = make_generation(references=[ref], ip_adapter_scale=0.5)
    rec = archive.save(g)
    assert rec.reference_hash == g.request.reference_hash
    assert archive.reference_images(rec.reference_hash) == [ref]
    kwargs = archive.get(rec.id).regenerate_kwargs()
    assert kwargs["reference"] == [ref] and kwargs["ip_adapter_scale"] == 0.5
    assert kwargs["seed"] == 7 and kwargs["prompt"] == "a red fox"


# -- reading -----------------------------------------------------------------------------------


def test_search_filters_combine_and_results_are_newest_first(archive: Archive):
    a = archive.save(make_generation("a red fox in snow", 1), batch_id="b1")
    b = archive.save(make_generation("a blue whale", 2), batch_id="b1")
    c = archive.save(make_generation("100% fox_style", 3), batch_id="b2")
    assert [r.id for r in archive.records()] == [c.id, b.id, a.id]
    assert [r.id for r in archive.records(limit=1, offset=1)] == [b.id]
    assert {r.id for r in archive.search("FOX")} == {a.id, c.id}
    assert [r.id for r in archive.search("100%")] == [c.id]  # % is literal, not a wildcard
    assert [r.id for r in archive.search("fox_st")] == [c.id]  # words, each a prefix
    assert {r.id for r in archive.search(batch="b1")} == {a.id, b.id}
    assert archive.search(model="pony") == []
    assert len(archive.search(model="animagine")) == 3
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    assert len(archive.search(since=past)) == 3
    assert archive.search(until=past) == []
    assert len(archive.search(since=past.isoformat(), text="whale")) == 1


def test_tags_are_added_and_searchable(archive: Archive):
    a = archive.save(make_generation("one"))
    b = archive.save(make_generation("two"))
    assert archive.tag(a.id, "keep", "portfolio").tags == ("keep", "portfolio")
    assert archive.tag(a, "keep").tags == ("keep", "portfolio")  # no duplicates
    archive.tag(b.id, "keeper")
    assert [r.id for r in archive.search(tag="keep")] == [a.id]  # whole tags only
    with pytest.raises(KeyError):
        archive.get("no-such-id")


def test_records_display_as_a_grid_of_small_thumbnails(archive: Archive):
    for n in range(3):
        archive.save(make_generation(f"prompt {n}", n, raw=png_bytes(size=(1024, 1024))))
    html = archive.records()._repr_html_()
    assert html.count("data:image/jpeg;base64,") == 3
    assert "prompt 1" in html
    assert len(html) < 3 * 40_000


def test_records_survive_a_restart_of_the_process(tmp_path: Path):
    root = tmp_path / "arch"
    writer = textwrap.dedent(
        f"""
        import io
        from PIL import Image
        from pixery_widgets.archive import Archive
        from pixery_widgets.core.config import Settings
        from pixery_widgets.core.types import Generation, GenerationRequest
        arch = Archive({str(root)!r}, settings=Settings())
        for n in range(3):
            buf = io.BytesIO(); Image.new("RGB", (32, 32), (n * 80, 0, 0)).save(buf, "PNG")
            req = GenerationRequest(prompt=f"restart {{n}}", model="pony", provider="selfhosted", seed=n)
            g = Generation(png_bytes=buf.getvalue(), seed=n, model="pony", provider="selfhosted",
                           params={{}}, elapsed_s=0.1, cost_usd=0.0, request=req)
            print(arch.save(g).id)
        """
    )
    reader = textwrap.dedent(
        f"""
        import json
        import pixery_widgets as px
        recs = px.Archive({str(root)!r}).records()
        print(json.dumps([[r.id, r.prompt, r.seed, r.path.is_file()] for r in recs]))
        """
    )
    wrote = subprocess.run(
        [sys.executable, "-c", writer], capture_output=True, text=True, check=True, timeout=60
    )
    ids = wrote.stdout.split()
    read = subprocess.run(
        [sys.executable, "-c", reader], capture_output=True, text=True, check=True, timeout=60
    )
    found = json.loads(read.stdout)
    assert [f[0] for f in found] == ids[::-1]
    assert [f[1:] for f in found] == [[f"restart {n}", n, True] for n in (2, 1, 0)]


# -- the hook in agenerate, against the simulator ---------------------------------------------


def test_agenerate_archives_every_image_where_settings_say(sim, tmp_path: Path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "out")
    g = run(px.agenerate("a lighthouse at dusk", seed=11, steps=20, settings=settings))
    assert g.path is not None and g.path.is_file()
    assert g.path.is_relative_to((tmp_path / "out").resolve())
    rec = Archive(tmp_path / "out", settings=Settings()).get(g.id)
    assert (rec.prompt, rec.seed, rec.steps) == ("a lighthouse at dusk", 11, 20)
    assert idat(g.path.read_bytes()) == idat(g.png_bytes)


def test_agenerate_with_archive_false_writes_nothing(sim, tmp_path: Path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "out")
    g = run(px.agenerate("nothing kept", seed=1, settings=settings, archive=False))
    assert g.path is None and g.id is None
    assert not (tmp_path / "out").exists()


def test_archive_failure_in_agenerate_keeps_the_image_and_the_cost(sim, tmp_path, monkeypatch):
    settings = Settings(selfhosted_url=sim.url)
    arch = Archive(tmp_path, settings=settings)
    images_before = LEDGER.images

    def broken(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(ArchiveError, match="Permission denied") as info:
        run(px.agenerate("unsaved", seed=3, settings=settings, archive=arch))
    assert info.value.generation.png_bytes[:8] == b"\x89PNG\r\n\x1a\n"
    assert LEDGER.images == images_before + 1


def test_a_record_regenerates_the_same_image(sim, tmp_path: Path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    ref = png_bytes((0, 0, 255), size=(128, 128))
    g = run(
        px.agenerate(
            "a castle", model="pony", width=832, height=1216, reference=ref, settings=settings
        )
    )
    assert g.seed is not None  # the server picked it; the archive records it
    rec = Archive(tmp_path, settings=settings).get(g.id)
    again = run(rec.aregenerate(settings=settings))
    assert again.png_bytes == g.png_bytes
    assert again.id != g.id and again.path.is_file()
    assert len(Archive(tmp_path, settings=settings)) == 2
    variant = run(rec.aregenerate(seed=rec.seed + 1, settings=settings))
    assert variant.png_bytes != g.png_bytes


def test_sync_regenerate_works_from_a_script(sim, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SELFHOSTED_API_URL", sim.url)
    monkeypatch.setenv("PIXERY_ARCHIVE_DIR", str(tmp_path))
    g = px.generate("sync fox", seed=5)
    rec = px.Archive().get(g.id)
    assert rec.regenerate().png_bytes == g.png_bytes


def test_an_archive_folder_deleted_while_the_kernel_runs_is_recreated(sim, tmp_path: Path):
    import shutil

    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "out")
    run(px.agenerate("before", seed=1, settings=settings))
    shutil.rmtree(tmp_path / "out")
    g = run(px.agenerate("after", seed=2, settings=settings))
    assert [r.id for r in Archive(tmp_path / "out", settings=Settings()).records()] == [g.id]
