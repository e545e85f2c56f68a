"""The gallery's rules as plain Python: filters, paging, the keyboard table, the views.

No widget here: ``session/gallery.py``, ``gallery_keys.py`` and ``gallery_views.py``
over a real archive in a temp folder.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from PIL import Image

from pixery_widgets.archive import Archive
from pixery_widgets.archive import store as archive_store
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import ArchiveError, InvalidRequestError
from pixery_widgets.session.gallery import (
    GalleryState,
    clean_filters,
    export_records,
    search_args,
)
from pixery_widgets.session.gallery_keys import key_action, moved
from pixery_widgets.session.gallery_views import (
    card,
    compare_view,
    detail_view,
    parameter_rows,
    remix_values,
)
from tests.test_archive import make_generation, png_bytes


@pytest.fixture
def archive(tmp_path) -> Archive:
    return Archive(tmp_path / "arch", settings=Settings())


def at(monkeypatch, when: dt.datetime) -> None:
    """Archive the next images as if made at ``when`` (UTC)."""
    monkeypatch.setattr(archive_store, "utcnow", lambda: when)


# -- filters ---------------------------------------------------------------------------------


def test_filters_drop_empty_values_and_keep_the_rest_as_json():
    raw = {"model": " pony ", "lora": "", "tag": ["red, blue"], "batch": None, "since": "",
           "until": "2025-01-31", "starred": True, "trashed": False}  # fmt: skip
    assert clean_filters(raw) == {
        "model": "pony",
        "tag": ["red, blue"],
        "until": "2025-01-31",
        "starred": True,
    }
    assert clean_filters({"tag": "one"}) == {"tag": ["one"]}
    assert clean_filters({"starred": False}) == {"starred": False}  # the unstarred ones
    assert clean_filters({"trashed": True}) == {"trashed": True}
    assert clean_filters(None) == {}


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"colour": "red"}, "Unknown gallery filter 'colour'"),
        ({"since": "last tuesday"}, "time"),
        ({"until": 20250131}, "date"),
        ({"starred": "yes"}, "True or False"),
        ({"model": 3}, "text"),
        ({"tag": ["x" * 500]}, "at most 100 characters"),
        ({"tag": ["two\nlines"]}, "control character"),
    ],
)
def test_a_filter_the_archive_cannot_search_by_is_refused_in_words(raw, words):
    with pytest.raises(InvalidRequestError, match=words):
        clean_filters(raw)


def test_an_until_date_counts_its_whole_day_and_a_time_is_exclusive():
    assert search_args({"until": "2025-01-31"})["until"] == "2025-02-01"
    assert search_args({"until": "2025-01-31T18:00"})["until"] == "2025-01-31T18:00"
    assert search_args({})["trashed"] is False and search_args({"trashed": True})["trashed"]


def test_date_range_finds_the_images_of_those_days(archive, monkeypatch):
    made = {}
    for day in (10, 11, 12):
        at(monkeypatch, dt.datetime(2025, 3, day, 12, tzinfo=dt.timezone.utc))
        made[day] = archive.save(make_generation(f"day {day}")).id
    state = GalleryState(archive)
    state.search(filters={"since": "2025-03-11", "until": "2025-03-11"})
    assert [r.id for r in state.records] == [made[11]] and state.total == 1
    state.search(filters={"since": "2025-03-11"})
    assert [r.id for r in state.records] == [made[12], made[11]]
    state.search(filters={"until": "2025-03-10T23:00"})
    assert [r.id for r in state.records] == [made[10]]


# -- paging and the live top -------------------------------------------------------------------


def test_pages_load_newest_first_until_every_match_is_shown(archive):
    ids = [archive.save(make_generation(f"fox {i}")).id for i in range(7)]
    state = GalleryState(archive, page_size=3)
    state.search()
    assert [r.id for r in state.records] == ids[::-1][:3]
    assert state.total == 7 and state.has_more
    assert [r.id for r in state.more()] == ids[::-1][3:6]
    assert len(state.more()) == 1 and not state.has_more
    assert state.more() == []


@pytest.mark.parametrize("size", [0, 501, 2.5, True])
def test_a_page_size_out_of_range_is_refused(archive, size):
    with pytest.raises(InvalidRequestError, match="page_size"):
        GalleryState(archive, page_size=size)


def test_a_new_image_joins_the_top_only_when_it_matches(archive):
    archive.save(make_generation("a fox"))
    state = GalleryState(archive)
    state.search("fox")
    fox = archive.save(make_generation("another fox"))
    cat = archive.save(make_generation("a cat"))
    assert state.arrived(cat.id) is None
    assert state.arrived(fox.id).id == fox.id
    assert state.records[0].id == fox.id and state.total == 2
    assert state.arrived(fox.id) is None  # once
    assert state.arrived("no-such-id") is None


# -- the keyboard ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "ctrl", "action"),
    [
        ("ArrowLeft", False, "left"),
        ("ArrowDown", False, "down"),
        ("Enter", False, "open"),
        ("Escape", False, "close"),
        ("s", False, "star"),
        ("Delete", False, "trash"),
        ("Backspace", False, "trash"),
        (" ", False, "select"),
        ("u", False, "undo"),
        ("z", True, "undo"),
        ("a", True, "select_all"),
        ("x", False, None),
        ("s", True, None),  # Ctrl+S saves the notebook: not ours
    ],
)
def test_each_key_has_its_action(key, ctrl, action):
    assert key_action(key, ctrl=ctrl) == action


@pytest.mark.parametrize(
    ("index", "action", "expected"),
    [
        (-1, "right", 0),
        (-1, "last", 9),
        (0, "left", 0),
        (0, "right", 1),
        (1, "down", 5),
        (5, "up", 1),
        (1, "up", 1),
        (6, "down", 9),  # the short last row: its last cell
        (8, "down", 8),  # already on the last row
        (9, "right", 9),
        (4, "first", 0),
        (4, "last", 9),
    ],
)
def test_the_cursor_moves_on_a_grid_and_stops_at_its_edges(index, action, expected):
    assert moved(index, action, columns=4, count=10) == expected


def test_the_cursor_in_an_empty_grid_goes_nowhere():
    assert moved(-1, "right", columns=4, count=0) == -1


# -- what is shown of a record -------------------------------------------------------------


def test_a_card_carries_a_small_jpeg_and_the_details_every_parameter(archive):
    rec = archive.save(make_generation("a red fox", seed=9, lora="detail_tweaker"), tags=["x"])
    shown = card(rec)
    assert shown["thumb"].startswith("data:image/jpeg;base64,") and len(shown["thumb"]) < 8000
    assert shown["problem"] == "" and shown["tags"] == ["x"]
    rows = dict(parameter_rows(rec))
    assert (
        rows["Prompt"] == "a red fox" and rows["Seed"] == "9" and rows["LoRA"] == "detail_tweaker"
    )
    assert rows["Size"] == "1024×1024" and rows["Steps"] == "28" and rows["CFG scale"] == "5"
    assert rows["Tags"] == "x" and rows["Id"] == rec.id
    detail = detail_view(rec)
    assert detail["a1111"].startswith("a red fox") and "Seed: 9" in detail["a1111"]
    assert "Negative prompt: lowres" in detail["a1111"] and "detail_tweaker" in detail["a1111"]
    assert detail["path"] == str(rec.path) and detail["image"].startswith("data:image/jpeg")
    with Image.open(io.BytesIO(rec.png_bytes())) as img:
        assert img.text["parameters"] == detail["a1111"]  # the very text in the PNG


def test_details_show_references_parent_and_children(archive):
    ref = png_bytes((0, 0, 255))
    root = archive.save(make_generation("root", references=[ref]))
    child = archive.save(make_generation("child"), parent_id=root.id)
    shown = detail_view(root)
    assert len(shown["references"]) == 1 and shown["references"][0].startswith("data:image")
    assert [c["id"] for c in shown["children"]] == [child.id] and shown["parent"] is None
    assert detail_view(archive.get(child.id))["parent"]["id"] == root.id


def test_a_missing_file_shows_in_words_on_its_card_and_its_details(archive):
    rec = archive.save(make_generation("deleted by hand"))
    rec.path.unlink()
    assert card(rec)["problem"] == "file missing" and card(rec)["thumb"] == ""
    shown = detail_view(rec)
    assert shown["missing"] and shown["image"] == "" and "missing" in shown["problem"]


def test_an_undecodable_file_shows_in_words(archive):
    rec = archive.save(make_generation("damaged"))
    rec.thumb_path.unlink(missing_ok=True)
    rec.path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert card(rec)["problem"] == "cannot be read"
    assert "cannot be decoded" in detail_view(rec)["problem"]


def test_compare_puts_the_parameters_that_differ_first(archive):
    a = archive.save(make_generation("a fox", seed=1))
    b = archive.save(make_generation("a fox", seed=2, lora="pixel_art"))
    view = compare_view([a, b])
    differing = [r["label"] for r in view["rows"] if r["differs"]]
    assert differing == ["Seed", "LoRA", "LoRA scale"]
    assert view["rows"][0]["values"] == ["1", "2"]
    same = {r["label"] for r in view["rows"] if not r["differs"]}
    assert {"Prompt", "Model", "Steps"} <= same and "Id" not in same
    assert [i["id"] for i in view["items"]] == [a.id, b.id]


def test_remix_values_are_the_records_settings_and_its_references(archive):
    ref = png_bytes((0, 200, 0))
    rec = archive.save(
        make_generation("a fox", seed=5, lora="pixel_art", lora_scale=0.5, references=[ref])
    )
    values = remix_values(rec)
    assert (values.prompt, values.negative_prompt, values.model) == ("a fox", "lowres", "animagine")
    assert (values.size, values.seed, values.steps, values.cfg_scale) == ((1024, 1024), 5, 28, 5.0)
    assert (values.lora, values.lora_scale) == ("pixel_art", 0.5)
    assert values.references == (ref,) and values.notes == ()


def test_remix_of_a_record_whose_references_are_gone_says_so(archive):
    import shutil

    rec = archive.save(make_generation("a fox", references=[png_bytes()]))
    shutil.rmtree(archive.root / "references")
    values = remix_values(rec)
    assert values.references == () and "reference" in values.notes[0]


# -- export ----------------------------------------------------------------------------------


def test_export_copies_each_image_with_a_json_sidecar(archive, tmp_path):
    a = archive.save(make_generation("a fox", seed=3), tags=['say "cheese"'])
    b = archive.save(make_generation("gone"))
    b.path.unlink()
    done = export_records([a, b], tmp_path / "out" / "picks")
    copy = tmp_path / "out" / "picks" / a.path.name
    assert done.files == (copy,) and copy.read_bytes() == a.path.read_bytes()
    side = json.loads(copy.with_suffix(".json").read_text())
    assert side["id"] == a.id and side["seed"] == 3 and side["tags"] == ['say "cheese"']
    assert side["parameters"].startswith("a fox") and side["pixery"]["request"]["seed"] == 3
    assert done.skipped == (b.id,) and "Left out 1 image whose file is missing" in done.message


def test_export_refuses_no_folder_and_words_a_folder_it_cannot_write(archive, tmp_path):
    rec = archive.save(make_generation("a fox"))
    with pytest.raises(InvalidRequestError, match="Name a folder"):
        export_records([rec], "  ")
    blocker = tmp_path / "a file"
    blocker.write_text("in the way")
    with pytest.raises(ArchiveError, match="Could not export to"):
        export_records([rec], blocker / "sub")


# -- actions on the state ------------------------------------------------------------------


def test_trash_is_undone_and_star_filters_follow(archive):
    a = archive.save(make_generation("one"))
    b = archive.save(make_generation("two"))
    state = GalleryState(archive)
    state.search(filters={"starred": True})
    assert state.total == 0
    state.search(filters={})
    assert state.star([a.id]) == "Starred 1 image."
    assert state.toggle_star([a.id, b.id]) == "Starred 2 images."  # not every one was
    assert state.toggle_star([a.id, b.id]) == "Unstarred 2 images."
    assert state.trash([b.id]) == "Moved 1 image to the trash."
    assert [r.id for r in state.records] == [a.id] and state.undoable == [b.id]
    assert state.undo() == "Brought 1 image back from the trash."
    assert state.total == 2 and state.undo() == "Nothing to undo."


def test_compare_takes_two_to_four(archive):
    ids = [archive.save(make_generation(f"n{i}")).id for i in range(5)]
    state = GalleryState(archive)
    state.search()
    assert len(state.compared(ids[:4])) == 4
    with pytest.raises(InvalidRequestError, match="2 to 4 images; 1 is selected"):
        state.compared(ids[:1] * 2)
    with pytest.raises(InvalidRequestError, match="5 are selected"):
        state.compared(ids)


def test_a_listener_of_new_images_that_fails_never_reaches_the_save(archive, caplog):
    from pixery_widgets.archive import on_changed, on_saved

    heard: list[tuple[str, str]] = []

    def broken(root, record_id):
        raise RuntimeError("a gallery with a bug")

    stops = [
        on_saved(broken),
        on_saved(lambda root, i: heard.append(("saved", i))),
        on_changed(broken),
        on_changed(lambda root, i: heard.append(("changed", i))),
    ]
    try:
        rec = archive.save(make_generation("still saved"))
        archive.star(rec.id)
    finally:
        for stop in stops:
            stop()
    assert archive.get(rec.id).starred
    assert heard == [("saved", rec.id), ("changed", rec.id)]  # the others still hear
    failed = [r for r in caplog.records if r.name == "pixery_widgets.archive.events"]
    assert [r.getMessage() for r in failed] == [
        "a listener of archive saved images failed",
        "a listener of archive changed images failed",
    ]
    assert all("a gallery with a bug" in str(r.exc_info[1]) for r in failed)
    archive.save(make_generation("after"))
    assert len(heard) == 2  # stopped
