"""``px.Gallery`` driven as its front end drives it: ``command`` messages in, traitlets out.

``send`` hands the widget the very comm message ``gallery.js`` sends
(``model.send({command, ...})``), so every click and key here is the browser's.
Generation runs against the real simulator; the archive is a temp folder.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

import pytest
from env_helpers import Env
from PIL import Image

import pixery_widgets as px
from pixery_widgets.archive import Archive
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import InvalidRequestError
from pixery_widgets.session.gallery import MAX_COMPARE
from pixery_widgets.widgets import Gallery, PixeryPanel
from pixery_widgets.widgets.compare import RecordDetails
from tests.test_archive import make_generation, png_bytes


def send(gallery: Gallery, command: str, **fields: Any) -> None:
    """What the front end's ``model.send({command, ...fields})`` delivers to the kernel."""
    content = {"command": command, **fields}
    gallery._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def key(gallery: Gallery, name: str, **extra: Any) -> None:
    send(gallery, "key", key=name, **extra)


def ids(gallery: Gallery) -> list[str]:
    return [card["id"] for card in gallery.records]


@pytest.fixture
def archive(tmp_path) -> Archive:
    return Archive(tmp_path / "arch", settings=Settings())


@pytest.fixture
def six(archive) -> list[str]:
    """Six records, oldest first: two models, a LoRA, a tag, two batches."""
    made = []
    for i in range(6):
        g = make_generation(f"{'lighthouse' if i % 2 else 'fox'} number {i}", seed=i)
        if i >= 4:
            g.model = "pony"
        rec = archive.save(g, batch_id=f"batch-{i // 3}", tags=["keep"] if i == 1 else ())
        made.append(rec.id)
    return made


# -- the grid, paging and what the state holds ----------------------------------------------


def test_first_page_is_newest_first_with_the_number_of_matches(archive, six):
    gallery = Gallery(archive, page_size=4)
    assert ids(gallery) == six[::-1][:4] and gallery.total == 6 and gallery.has_more
    assert all(c["thumb"].startswith("data:image/jpeg;base64,") for c in gallery.records)
    assert gallery.menus["models"] == ["animagine", "pony"]
    assert gallery.menus["tags"] == [["keep", 1]]
    send(gallery, "more")
    assert ids(gallery) == six[::-1] and not gallery.has_more
    assert "6 matches" in repr(gallery)


def test_the_state_keeps_only_the_thumbnails_near_what_is_on_screen(archive):
    made = [archive.save(make_generation(f"n {i}")).id for i in range(40)]
    gallery = Gallery(archive, page_size=10)
    for _ in range(3):
        send(gallery, "more")
    assert len(gallery.records) == 40
    send(gallery, "visible", first=20, last=25)  # the front end scrolled there
    with_thumbs = [i for i, c in enumerate(gallery.records) if c["thumb"]]
    assert with_thumbs == list(range(20 - 6, 25 + 6 + 1))
    assert ids(gallery) == made[::-1]  # every card is still there, light
    send(gallery, "visible", first=0, last=5)
    assert [i for i, c in enumerate(gallery.records) if c["thumb"]] == list(range(12))


def test_a_search_and_each_filter_narrow_the_grid(archive, six, monkeypatch):
    gallery = Gallery(archive)
    send(gallery, "search", query="lighthou")
    assert ids(gallery) == [six[5], six[3], six[1]] and gallery.total == 3
    assert gallery.query == "lighthou"
    gallery.query = ""  # from code, as from the box
    assert gallery.total == 6
    for filters, expected in [
        ({"model": "pony"}, [six[5], six[4]]),
        ({"tag": "keep"}, [six[1]]),
        ({"batch": "batch-0"}, [six[2], six[1], six[0]]),
        ({"model": "pony", "batch": "batch-1"}, [six[5], six[4]]),
    ]:
        send(gallery, "filter", filters=filters)
        assert ids(gallery) == expected, filters
        assert gallery.filters == {k: [v] if k == "tag" else v for k, v in filters.items()}
    send(gallery, "filter", filters={})
    send(gallery, "filter", lora="detail_tweaker")  # one filter changed
    assert gallery.total == 0 and gallery.message == "No image matches."


def test_starred_and_trash_filters(archive, six):
    gallery = Gallery(archive)
    send(gallery, "star", ids=[six[2]])
    send(gallery, "trash", ids=[six[0]])
    send(gallery, "filter", filters={"starred": True})
    assert ids(gallery) == [six[2]]
    send(gallery, "filter", filters={"trashed": True})
    assert ids(gallery) == [six[0]] and gallery.records[0]["trashed"]
    send(gallery, "restore", ids=[six[0]])
    assert gallery.total == 0 and gallery.message.startswith("Restored 1 image")


def test_a_bad_filter_is_refused_in_words_and_the_search_stays(archive, six):
    gallery = Gallery(archive)
    send(gallery, "filter", filters={"model": "pony"})
    send(gallery, "filter", filters={"model": "pony", "since": "last tuesday"})
    assert gallery.message_kind == "error" and "as a time" in gallery.message
    assert gallery.filters == {"model": "pony"} and gallery.total == 2
    send(gallery, "no_such_command")
    assert gallery.message == "Unknown gallery command 'no_such_command'."
    send(gallery, "open")  # a message without its fields
    assert gallery.message_kind == "error" and gallery.detail is None


# -- the details view and the keyboard ------------------------------------------------------


def test_a_click_opens_the_details_and_esc_closes_them(archive, six):
    gallery = Gallery(archive)
    send(gallery, "open", id=six[3])
    detail = gallery.detail
    assert detail["id"] == six[3] and detail["prompt"] == "lighthouse number 3"
    assert detail["image"].startswith("data:image/jpeg;base64,")
    assert dict(detail["rows"])["Seed"] == "3" and detail["a1111"].startswith("lighthouse")
    assert detail["path"].endswith(".png") and detail["batch"] == "batch-1"
    key(gallery, "Escape")
    assert gallery.detail is None


def test_arrows_move_the_cursor_enter_opens_and_arrows_page_through_details(archive, six):
    gallery = Gallery(archive)
    newest = six[::-1]
    key(gallery, "ArrowRight", columns=3)
    assert gallery.focus == newest[0]
    key(gallery, "ArrowDown", columns=3)
    assert gallery.focus == newest[3]
    key(gallery, "ArrowLeft", columns=3)
    key(gallery, "Enter")
    assert gallery.detail["id"] == newest[2]
    key(gallery, "ArrowRight")
    assert gallery.detail["id"] == newest[3]
    key(gallery, "ArrowUp")  # only left and right page through the details
    assert gallery.detail["id"] == newest[3]
    key(gallery, "Escape")
    key(gallery, "End")
    assert gallery.focus == newest[-1]
    key(gallery, "x")  # not the gallery's
    assert gallery.message == ""


def test_arrows_past_the_loaded_cards_load_the_next_page(archive):
    made = [archive.save(make_generation(f"n {i}")).id for i in range(5)]
    gallery = Gallery(archive, page_size=2)
    key(gallery, "ArrowRight", columns=2)
    key(gallery, "ArrowDown", columns=2)
    assert len(gallery.records) >= 4 and gallery.focus == made[::-1][2]


def test_s_stars_the_open_record_and_again_unstars_it(archive, six):
    gallery = Gallery(archive)
    send(gallery, "open", id=six[1])
    key(gallery, "s")
    assert gallery.detail["starred"] and archive.get(six[1]).starred
    assert gallery.records[gallery.state.index_of(six[1])]["starred"]
    assert gallery.message == "Starred 1 image."
    key(gallery, "S")
    assert not archive.get(six[1]).starred and gallery.message == "Unstarred 1 image."


def test_delete_trashes_and_u_brings_it_back(archive, six):
    gallery = Gallery(archive)
    newest = six[::-1]
    send(gallery, "open", id=newest[1])
    key(gallery, "Delete")
    assert archive.get(newest[1]).trashed and gallery.total == 5
    assert gallery.can_undo and "Undo (u)" in gallery.message
    assert gallery.detail["id"] == newest[2]  # the next one opens in its place
    key(gallery, "u")
    assert not archive.get(newest[1]).trashed and gallery.total == 6 and not gallery.can_undo
    key(gallery, "Escape")
    assert gallery.focus == newest[2]  # the cursor is where the details were
    key(gallery, "Backspace")
    assert archive.get(newest[2]).trashed
    key(gallery, "z", ctrl=True)
    assert not archive.get(newest[2]).trashed


def test_space_shift_and_ctrl_select(archive, six):
    gallery = Gallery(archive)
    newest = six[::-1]
    key(gallery, "ArrowRight")
    key(gallery, " ")
    assert gallery.selected == [newest[0]]
    send(gallery, "select", id=newest[3], how="range")  # Shift+click
    assert gallery.selected == newest[:4]
    send(gallery, "select", id=newest[1], how="toggle")  # Ctrl+click
    assert gallery.selected == [newest[0], newest[2], newest[3]]
    key(gallery, "a", ctrl=True)
    assert gallery.selected == newest
    key(gallery, "Escape")
    assert gallery.selected == []
    send(gallery, "select", how="sideways", id=newest[0])
    assert gallery.message == "Unknown way to select: 'sideways'."


def test_an_action_with_nothing_chosen_says_what_to_do(archive, six):
    gallery = Gallery(archive)
    key(gallery, "s")
    assert gallery.message_kind == "error" and gallery.message.startswith("Select an image first")


# -- actions on the selection ---------------------------------------------------------------


def test_star_tag_and_untag_the_selection(archive, six):
    gallery = Gallery(archive)
    chosen = [six[0], six[2]]
    send(gallery, "select", id=six[0])
    send(gallery, "select", id=six[2])
    send(gallery, "star")
    assert all(archive.get(i).starred for i in chosen) and not archive.get(six[1]).starred
    send(gallery, "unstar", ids=chosen)
    assert not any(archive.get(i).starred for i in chosen)
    odd = 'say "cheese", 🦊 (x)'
    send(gallery, "tag", tag=odd)
    assert all(archive.get(i).tags == (odd,) for i in chosen)
    assert [odd, 2] in gallery.menus["tags"]
    send(gallery, "filter", filters={"tag": odd})
    assert sorted(ids(gallery)) == sorted(chosen)
    send(gallery, "untag", tag=odd, ids=[six[0]])
    assert ids(gallery) == [six[2]]  # the filter follows


@pytest.mark.parametrize(
    ("tag", "words"),
    [("x" * 500, "at most 100 characters"), ("two\nlines", "newline"), ("  ", "cannot be empty")],
)
def test_a_tag_that_cannot_be_kept_is_refused_in_words_in_the_gallery(archive, six, tag, words):
    gallery = Gallery(archive)
    send(gallery, "tag", tag=tag, ids=[six[0]])
    assert gallery.message_kind == "error" and words in gallery.message
    assert archive.get(six[0]).tags == ()


def test_empty_trash_says_how_much_it_frees(archive, six):
    gallery = Gallery(archive)
    files = [f for i in six[:2] for f in (archive.get(i).path, archive.get(i).thumb_path)]
    size = sum(f.stat().st_size for f in files)  # the images and the thumbnails shown
    send(gallery, "trash", ids=[six[0], six[1]])
    send(gallery, "filter", filters={"trashed": True})
    assert gallery.total == 2
    send(gallery, "empty_trash")
    assert gallery.message.startswith("Emptied the trash: 2 images deleted, ")
    assert f"{size / 1000:.0f} KB freed" in gallery.message and gallery.total == 0
    assert not gallery.can_undo


def test_export_writes_copies_and_sidecars_into_the_named_folder(archive, six, tmp_path):
    gallery = Gallery(archive)
    send(gallery, "export", folder=str(tmp_path / "picks"), ids=[six[0], six[1]])
    files = sorted(p.name for p in (tmp_path / "picks").iterdir())
    assert len(files) == 4 and sum(f.endswith(".json") for f in files) == 2
    assert gallery.message.startswith("Exported 2 images with a JSON sidecar each")
    side = json.loads(next((tmp_path / "picks").glob("*.json")).read_text())
    assert side["prompt"] in ("fox number 0", "lighthouse number 1")
    send(gallery, "export", folder="", ids=[six[0]])
    assert gallery.message == "Name a folder to export to."


def test_compare_two_to_four_side_by_side(archive, six):
    gallery = Gallery(archive)
    send(gallery, "compare", ids=[six[0], six[1]])
    rows = {r["label"]: r for r in gallery.comparing["rows"]}
    assert rows["Prompt"]["differs"] and rows["Seed"]["values"] == ["0", "1"]
    assert not rows["Steps"]["differs"]
    assert [i["id"] for i in gallery.comparing["items"]] == [six[0], six[1]]
    key(gallery, "Escape")
    assert gallery.comparing is None
    send(gallery, "compare", ids=six[:5])
    assert gallery.message == f"Compare takes 2 to {MAX_COMPARE} images; 5 are selected."


def test_px_compare_shows_records_from_code(archive, six):
    records = archive.search(limit=3)
    view = px.compare(records)
    assert view.mode == "compare" and len(view.comparing["items"]) == 3
    send(view, "open", id=records[0].id)  # a click on one opens its details there
    assert view.detail["id"] == records[0].id
    key(view, "Escape")
    assert view.detail is None and view.comparing is not None  # compare stays
    with pytest.raises(InvalidRequestError, match="2 to 4"):
        px.compare(records[:1])


# -- bad files ------------------------------------------------------------------------------


def test_a_deleted_file_shows_as_missing_and_can_be_dropped(archive, six):
    gone = archive.get(six[5])
    gone.path.unlink()
    gallery = Gallery(archive)
    assert gallery.records[0]["problem"] == "file missing" and gallery.records[0]["thumb"] == ""
    assert all(c["thumb"] for c in gallery.records[1:])  # the page is whole
    send(gallery, "open", id=six[5])
    assert gallery.detail["missing"] and "missing" in gallery.detail["problem"]
    send(gallery, "forget_missing")
    assert gallery.message == "Forgot 1 record whose image file was gone."
    assert six[5] not in ids(gallery) and gallery.detail is None


def test_a_corrupt_thumbnail_is_made_again(archive, six):
    rec = archive.get(six[5])
    Gallery(archive)  # the thumbnail exists now
    rec.thumb_path.write_bytes(b"\xff\xd8\xff\xe0 cut off")
    gallery = Gallery(archive)
    url = gallery.records[0]["thumb"]
    raw = base64.b64decode(url.split(",", 1)[1])
    assert Image.open(io.BytesIO(raw)).size[0] <= 160 and raw[-2:] == b"\xff\xd9"


# -- into a panel, and new images ---------------------------------------------------------


def _panel(tmp_path, sim) -> PixeryPanel:
    return PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)


async def _healthy(panel: PixeryPanel) -> None:
    await panel.refresh()
    await panel.wait_idle()


def test_remix_loads_the_records_settings_into_the_panel(tmp_path, sim, archive):
    ref = png_bytes((0, 0, 200))
    g = make_generation("a harbour at dawn", seed=41, lora="pixel_art", lora_scale=0.4,
                        references=[ref], width=832, height=1216)  # fmt: skip
    g.model = "pony"
    rec = archive.save(g)

    async def body() -> PixeryPanel:
        panel = _panel(tmp_path, sim)
        await _healthy(panel)
        gallery = Gallery(archive, panel=panel)
        send(gallery, "remix", id=rec.id)
        assert gallery.message.startswith(f"Loaded {rec.id} into the panel")
        await panel.wait_idle()
        return panel

    panel = asyncio.run(body())
    form = panel.form_values()
    assert panel.model == "pony" and form.prompt == "a harbour at dawn"
    assert panel._remixed_from == rec.id
    assert form.negative_prompt == "lowres" and form.size == (1024, 1024)  # the server's size
    assert form.seed == "41" and form.steps == 28 and form.cfg_scale == 5.0
    assert (form.lora, form.lora_scale) == ("pixel_art", 0.4) and form.reference == ref


def test_remix_without_a_panel_or_with_a_greyed_model_says_so(tmp_path, archive, six):
    gallery = Gallery(archive)
    send(gallery, "remix", id=six[0])
    assert "needs a panel" in gallery.message and gallery.message_kind == "error"
    panel = PixeryPanel(load=Env(tmp_path).load)  # no server configured: local models greyed
    gallery.panel = panel
    assert gallery.linked
    send(gallery, "remix", id=six[0])
    assert "animagine cannot be chosen now" in gallery.message
    assert panel.prompt.value == "fox number 0" and panel.seed.value == "0"
    panel.close()


def test_use_as_reference_puts_the_image_in_the_panel(tmp_path, archive, six):
    panel = PixeryPanel(load=Env(tmp_path).load)
    gallery = Gallery(archive, panel=panel)
    send(gallery, "reference", id=six[2])
    assert panel.form_values().reference == archive.get(six[2]).png_bytes()
    assert gallery.message == f"{six[2]} is now the panel's reference image."
    panel.close()


def test_vary_seed_makes_a_child_in_the_background_and_it_appears_at_the_top(
    tmp_path, sim, monkeypatch
):
    monkeypatch.setenv("SELFHOSTED_API_URL", sim.url)

    async def body() -> tuple[Gallery, Any]:
        first = await px.agenerate("a windmill", model="animagine", seed=5)
        gallery = Gallery()
        send(gallery, "vary", ids=[first.id])
        assert gallery.busy.startswith("Making 1 variation")
        await gallery.wait_idle()
        await asyncio.sleep(0)  # the save's call into the loop
        return gallery, first

    gallery, first = asyncio.run(body())
    top = gallery.shown[0]
    assert top.parent_id == first.id and top.seed != 5 and top.prompt == "a windmill"
    assert gallery.total == 2 and ids(gallery)[0] == top.id and gallery.busy == ""
    assert gallery.message.startswith(f"Made a variation of {first.id}")


def test_an_image_made_while_the_gallery_is_open_appears_at_its_top(tmp_path, sim, monkeypatch):
    monkeypatch.setenv("SELFHOSTED_API_URL", sim.url)

    async def body() -> tuple[Gallery, Gallery, list[str]]:
        await px.agenerate("an old fox", model="animagine", seed=1)
        gallery = Gallery()
        cats = Gallery(query="cat")
        batch = await px.arun_batch(["a lighthouse", "a cat"], model="animagine", seeds=[2],
                                    progress=False)  # fmt: skip
        await asyncio.sleep(0.05)
        return gallery, cats, [g.id for g in batch.generations]

    gallery, cats, made = asyncio.run(body())
    assert gallery.total == 3 and set(ids(gallery)[:2]) == set(made)
    assert ids(cats) == [made[1]]  # only what matches its search
    gallery.close()
    assert gallery.records  # closed: it stops listening, keeps what it showed


def test_a_batch_opens_as_a_gallery_of_its_images(tmp_path, sim, monkeypatch):
    monkeypatch.setenv("SELFHOSTED_API_URL", sim.url)

    async def body() -> Any:
        await px.agenerate("before", model="animagine", seed=1)
        return await px.arun_batch(["one", "two"], model="animagine", seeds=[3], progress=False)

    batch = asyncio.run(body())
    gallery = px.Gallery(batch)
    assert gallery.filters == {"batch": batch.id} and sorted(ids(gallery)) == sorted(
        g.id for g in batch.generations
    )
    assert isinstance(batch.archive.browse(), Gallery)


# -- the panel's strip opens the same details -----------------------------------------------


def test_the_panels_image_can_be_starred_and_opens_the_gallerys_details(tmp_path, sim):
    async def body() -> PixeryPanel:
        panel = _panel(tmp_path, sim)
        await _healthy(panel)
        panel.prompt.value = "a red kite"
        panel.generate_button.click()
        await panel.wait_idle()
        return panel

    panel = asyncio.run(body())
    bar = panel.image_output.record_bar
    generation = panel.last_generation
    assert bar.record is not None and bar.record.id == generation.id
    bar.star_button.click()
    assert bar.star_button.description == "★ Starred"
    archive = bar.record.archive
    assert archive.get(generation.id).starred
    bar.details_button.click()
    details = bar.details
    assert isinstance(details, RecordDetails) and details.mode == "details"
    assert details.detail["id"] == generation.id and details.detail["starred"]
    assert details in bar.children
    send(details, "remix")  # the same actions: Remix loads into this panel
    assert panel.prompt.value == "a red kite" and "Loaded" in details.message
    key(details, "s")
    assert not archive.get(generation.id).starred
    assert bar.star_button.description == "☆ Star"
    key(details, "Escape")
    assert details not in bar.children
    panel.close()


def test_the_next_image_after_a_remix_records_the_remixed_one_as_its_parent(
    tmp_path, sim, monkeypatch
):
    monkeypatch.setenv("SELFHOSTED_API_URL", sim.url)

    async def body() -> list[Any]:
        first = await px.agenerate("a quiet harbour", model="animagine", seed=8)
        panel = _panel(tmp_path, sim)
        await _healthy(panel)
        gallery = Gallery(panel=panel)
        send(gallery, "remix", id=first.id)
        panel.prompt.value += ", at night"  # changed, then generated
        made = []
        for _ in range(2):
            panel.generate_button.click()
            await panel.wait_idle()
            made.append(panel.last_generation)
        panel.close()
        return [first, *made]

    first, remixed, after = asyncio.run(body())
    archive = px.Archive()
    assert archive.get(remixed.id).parent_id == first.id
    assert archive.get(remixed.id).prompt == "a quiet harbour, at night"
    assert archive.get(after.id).parent_id is None  # only the press after the remix
    assert [c.id for c in archive.get(first.id).children()] == [remixed.id]


def test_a_star_given_elsewhere_shows_in_an_open_gallery(archive, six):
    gallery = Gallery(archive)
    send(gallery, "open", id=six[4])
    archive.star(six[4])  # the panel's star button, another gallery, a cell
    assert gallery.records[gallery.state.index_of(six[4])]["starred"]
    assert gallery.detail["starred"]
    archive.tag(six[3], "from a cell")
    assert gallery.records[gallery.state.index_of(six[3])]["tags"] == ["from a cell"]
    gallery.close()
    archive.star(six[3])  # closed: it no longer listens
    assert not gallery.records[gallery.state.index_of(six[3])]["starred"]
