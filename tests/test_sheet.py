"""Contact sheets against the simulator: every image in its cell under its labels, failures
drawn in words, a sheet per z value, light to show, full size to save, and archived with
a link from each cell to its image's record."""

from __future__ import annotations

import asyncio
import json

import pytest
from IPython.core.formatters import DisplayFormatter
from PIL import Image, ImageChops, ImageStat

import pixery_widgets as px
from pixery_widgets.archive import Archive
from pixery_widgets.archive.files import THUMB_SIDE
from pixery_widgets.archive.png import read_text_chunks
from pixery_widgets.archive.sheets import SHEET_CHUNK, read_sheet, sheet_paths
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import InvalidRequestError
from pixery_widgets.session.batch_plan import plan_batch
from pixery_widgets.session.sheet import DISPLAY_CELL, DISPLAY_PIXELS
from pixery_widgets.session.sheet_draw import BLANK, FAIL, FAIL_INK, PAPER

LORA_SCALES = [0.0, 0.5, 1.0]
SEEDS = [1, 2, 3]


def run(coro):
    return asyncio.run(coro)


def sweep(sim, tmp_path, **kwargs):
    """lora_scale (x) × seed (y) on one prompt: nine different pictures."""
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "archive")
    args = {"vary": {"lora_scale": LORA_SCALES, "seed": SEEDS}, "lora": "pixel_art", **kwargs}
    return run(px.arun_batch("a lighthouse at dusk", settings=settings, progress=False, **args))


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def pixels(image: Image.Image, box) -> list[tuple[int, int, int]]:
    raw = image.crop(box).convert("RGB").tobytes()
    return list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))


def ink(image: Image.Image, box) -> int:
    """Pixels in ``box`` darker than the label colour's half-way mark: drawn text."""
    return sum(1 for p in pixels(image, box) if max(p) < 140)


def share(image: Image.Image, box, colour) -> float:
    inside = pixels(image, box)
    return sum(1 for p in inside if p == colour) / len(inside)


def test_each_image_sits_in_its_own_cell_under_its_column_and_beside_its_row(sim, tmp_path):
    batch = sweep(sim, tmp_path)
    sheet = batch.grid()
    image, layout = sheet.images[0], sheet.layout
    assert (sheet.x.name, sheet.y.name, sheet.page_axes) == ("lora_scale", "seed", ())
    assert layout.cell == (DISPLAY_CELL, DISPLAY_CELL) and image.size == layout.size
    fitted = {}
    for col in range(3):
        for row in range(3):
            cell = sheet.cell(col, row)
            job = batch.jobs[cell.job]
            assert dict(job.overrides)["lora_scale"] == LORA_SCALES[col] and job.seed == SEEDS[row]
            box = sheet.picture_box(col, row)
            assert box == sheet.box(col, row)  # square images fill square cells
            fitted[col, row] = image.crop(box)
    for (col, row), shown in fitted.items():
        own = batch.results[sheet.cell(col, row).job].image.convert("RGB")
        expected = own.resize(shown.size, Image.Resampling.LANCZOS)
        assert mean_diff(shown, expected) < 1.5
        others = [
            batch.results[sheet.cell(c, r).job].image.convert("RGB").resize(shown.size)
            for c, r in fitted
            if (c, r) != (col, row)
        ]
        assert all(mean_diff(shown, other) > 10 for other in others)  # not just any picture

    for col in range(3):  # the column labels: text in the band above each column
        left, top, right, _ = sheet.box(col, 0)
        assert ink(image, (left, layout.title, right, top)) > 30
    for row in range(3):  # the row labels: text in the band left of each row
        _, top, _, bottom = sheet.box(0, row)
        assert ink(image, (0, top, layout.left, bottom)) > 30
    corner = (0, 0, layout.left, layout.title + layout.top)
    assert share(image, corner, PAPER) == 1.0  # no label where no axis is
    assert layout.col_lines == (("LoRA scale: 0",), ("LoRA scale: 0.5",), ("LoRA scale: 1",))
    assert layout.row_lines == (("Seed: 1",), ("Seed: 2",), ("Seed: 3",))


def test_a_failed_cell_is_a_labelled_blank_and_a_retry_fills_it(sim, tmp_path):
    sim.set_fault("/generate", "status_503", times=1)  # the first job: lora_scale 0, seed 1
    batch = sweep(sim, tmp_path)
    sheet = batch.grid()
    failed = sheet.cell(0, 0)
    assert (failed.status, failed.record_id) == ("failed", None) and failed.reason
    box = sheet.box(0, 0)
    assert sheet.picture_box(0, 0) is None
    assert share(sheet.images[0], box, FAIL) > 0.8  # the blank, in the failure colour
    assert sum(1 for p in pixels(sheet.images[0], box) if p == FAIL_INK) > 20  # "failed", in words
    assert read_sheet(sheet.paths[0])["cells"][0]["status"] == "failed"
    assert all(c.status == "ok" for c in sheet.cells[0][1:])

    run(batch.aretry_failed(progress=False))
    again = batch.grid()
    assert again.paths == sheet.paths  # the same sheet, drawn again
    assert again.cell(0, 0).status == "ok" and share(again.images[0], box, FAIL) < 0.01
    assert read_sheet(again.paths[0])["cells"][0]["record_id"] == batch.results[0].id


def test_cells_not_made_yet_say_so(tmp_path, sim):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    batch = run(
        plan_batch("x", seeds=[1], vary={"steps": [10, 20]}, settings=settings, archive=False)
    )
    sheet = batch.grid()
    assert [c.status for c in sheet.cells[0]] == ["pending", "pending"]
    assert share(sheet.images[0], sheet.box(1, 0), BLANK) > 0.8
    assert sheet.paths == []  # no archive, no archived copy


def test_z_makes_a_sheet_per_value_and_other_varied_axes_more_sheets(sim, tmp_path):
    batch = sweep(
        sim, tmp_path, model=["animagine", "pony"], vary={"lora_scale": [0, 1], "seed": [1, 2]}
    )
    default = batch.grid()  # x, y: the vary= axes; the models make two sheets
    assert (default.x.name, default.y.name) == ("lora_scale", "seed")
    assert [a.name for a in default.page_axes] == ["model"] and len(default) == 2
    only_z = batch.grid(z="seed")  # x and y: the others that vary, in order
    assert (only_z.x.name, only_z.y.name, [a.name for a in only_z.page_axes]) == (
        "lora_scale",
        "model",
        ["seed"],
    )
    chosen = batch.grid(x="model", y="seed", z="lora_scale")
    assert len(chosen) == 2 and [m["title"] for m in chosen.meta] == [
        "LoRA scale: 0",
        "LoRA scale: 1",
    ]
    for k, image in enumerate(chosen.images):
        layout = chosen.layout
        assert ink(image, (0, 0, layout.size[0], layout.title)) > 30  # the z value, written
        for col, model in enumerate(["animagine", "pony"]):
            for row, seed in enumerate([1, 2]):
                job = batch.jobs[chosen.cell(col, row, k).job]
                assert (job.model, job.seed, dict(job.overrides)["lora_scale"]) == (model, seed, k)
    assert len({p.name for p in chosen.paths}) == 2
    assert chosen._repr_png_() is None and chosen._repr_jpeg_() is None
    assert chosen._repr_html_().count("<img") == 2
    with pytest.raises(InvalidRequestError, match="no axis 'cfg_scale'; its axes are prompt"):
        batch.grid(x="cfg_scale")
    with pytest.raises(InvalidRequestError, match="one side of a sheet"):
        batch.grid(x="seed", y="seed")


def test_the_archived_sheet_links_every_cell_to_its_images_record(sim, tmp_path):
    batch = sweep(sim, tmp_path)
    sheet = batch.grid()
    root = tmp_path / "archive"
    assert sheet_paths(root, batch.id) == sheet.paths and len(sheet.paths) == 1
    path = sheet.paths[0]
    assert path.parent == root / "sheets" / batch.id
    meta = read_sheet(path)
    assert json.loads(path.with_suffix(".json").read_text()) == meta
    assert json.loads(read_text_chunks(path.read_bytes())[SHEET_CHUNK]) == meta
    assert Image.open(path).size == sheet.images[0].size
    assert meta["batch_id"] == batch.id and meta["x"]["name"] == "lora_scale"
    assert meta["sweep"]["order"] == ["prompt", "lora_scale", "seed", "model"]
    assert meta["params"] == {"lora": "pixel_art"}
    archive = Archive(root)
    for cell in meta["cells"]:
        record = archive.get(cell["record_id"])
        assert record.path.is_file() and record.batch_id == batch.id
        assert (record.lora_scale, record.seed) == (LORA_SCALES[cell["col"]], SEEDS[cell["row"]])
        assert cell["values"] == {
            "lora_scale": f"{LORA_SCALES[cell['col']]:g}",
            "seed": str(SEEDS[cell["row"]]),
        }


def test_saving_draws_the_sheet_again_at_full_size(sim, tmp_path):
    batch = sweep(sim, tmp_path)
    sheet = batch.grid(archive=False)
    [path] = sheet.save(tmp_path / "full.png")
    full = Image.open(path)
    full.load()
    assert full.size[0] > 3 * 1024 > sheet.images[0].size[0]
    big = sheet.full()
    assert big.images[0].size == full.size
    assert ImageChops.difference(big.images[0], full.convert("RGB")).getbbox() is None
    assert big.layout.cell == (1024, 1024) and big.layout.font_size > sheet.layout.font_size
    assert json.loads(read_text_chunks(path.read_bytes())[SHEET_CHUNK])["x"]["name"] == "lora_scale"
    original = batch.results[sheet.cell(1, 2).job].image.convert("RGB")
    shown = full.convert("RGB").crop(big.picture_box(1, 2))
    assert ImageChops.difference(shown, original).getbbox() is None  # every pixel, as drawn


def test_cells_of_other_sizes_keep_their_shape(sim, tmp_path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    batch = run(
        px.arun_batch(
            "x",
            seeds=[1],
            vary={"size": [(1024, 1024), (832, 1216)]},
            settings=settings,
            progress=False,
        )
    )
    sheet = batch.grid()
    assert sheet.layout.cell[1] == DISPLAY_CELL  # the tallest image sets the cell's height
    left, top, right, bottom = sheet.picture_box(1, 0)
    assert abs((right - left) / (bottom - top) - 832 / 1216) < 0.01
    assert sheet.layout.col_lines == (("Size: 1024x1024",), ("Size: 832x1216",))


def test_a_hundred_image_sweep_shows_light_and_a_notebook_holds_it_once(sim, tmp_path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    sr = px.prompt_sr("a red car at night", "red", [f"colour{n}" for n in range(9)])
    batch = run(
        px.arun_batch(
            sr[0],
            vary={"prompt": sr, "seed": list(range(10))},
            width=512,
            height=512,
            settings=settings,
            progress=False,
        )
    )
    assert batch.ok and len(batch) == 100
    sheet = batch.grid()
    width, height = sheet.images[0].size
    assert width * height <= DISPLAY_PIXELS
    assert sheet.layout.cell == (THUMB_SIDE, THUMB_SIDE)  # drawn from the batch's thumbnails
    assert sheet.layout.col_lines[3] == ("Prompt S/R: colour2",)  # the word, not the prompt
    for col, row in [(0, 0), (9, 9), (4, 7)]:
        shown = sheet.images[0].crop(sheet.picture_box(col, row))
        own = batch.results[sheet.cell(col, row).job].image.convert("RGB").resize(shown.size)
        assert mean_diff(shown, own) < 4
    data, _meta = DisplayFormatter().format(sheet)
    kinds = {k for k in data if k.startswith("image/") or k == "text/html"}
    assert len(kinds) == 1  # one copy of the picture in a saved notebook
    assert sum(len(v) for k, v in data.items() if k in kinds) < 1_500_000
