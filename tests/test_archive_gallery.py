"""The archive API a gallery uses: stars, tags as typed, a soft trash, word search, lineage."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pixery_widgets as px
from pixery_widgets.archive import Archive
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import InvalidRequestError, PixeryError, RecordNotFoundError
from tests.test_archive import make_generation, png_bytes


@pytest.fixture
def archive(tmp_path) -> Archive:
    return Archive(tmp_path / "arch", settings=Settings())


def ids(records) -> list[str]:
    return [r.id for r in records]


def test_star_and_unstar_filter_and_show_on_the_record(archive):
    a = archive.save(make_generation("one"))
    b = archive.save(make_generation("two"))
    assert a.starred is False
    starred = a.star()
    assert starred.starred is True and archive.get(a.id).starred is True
    assert ids(archive.search(starred=True)) == [a.id]
    assert ids(archive.search(starred=False)) == [b.id]
    assert archive.count(starred=None) == 2
    assert starred.unstar().starred is False
    assert archive.count(starred=True) == 0


@pytest.mark.parametrize(
    "tag",
    ['say "cheese"', "red, blue", "fox 🦊", "it's: a/b\\c %_*", "x" * 100, "日本語のタグ"],
)
def test_a_tag_with_odd_characters_is_stored_and_found_as_typed(archive, tag):
    a = archive.save(make_generation("one"))
    archive.save(make_generation("two"), tags=["plain"])
    assert a.tag(tag).tags == (tag,)
    assert ids(archive.search(tag=tag)) == [a.id]
    assert archive.count(tag=tag) == 1
    assert archive.tags() == {"plain": 1, tag: 1}
    assert archive.get(a.id).untag(tag).tags == ()
    assert archive.search(tag=tag) == []


@pytest.mark.parametrize("tag", ["", "   ", "x" * 101, "two\nlines", "tab\there"])
def test_a_tag_that_cannot_be_kept_is_refused_in_words(archive, tag):
    a = archive.save(make_generation("one"))
    with pytest.raises(InvalidRequestError, match="tag"):
        a.tag(tag)
    with pytest.raises(InvalidRequestError, match="tag"):
        archive.save(make_generation("two"), tags=[tag])
    assert archive.get(a.id).tags == () and len(archive) == 1  # nothing written


def test_tags_keep_the_order_they_were_added_and_count_for_completion(archive):
    a = archive.save(make_generation("one"), tags=["zebra", "apple"])
    b = archive.save(make_generation("two"), tags=["apple"])
    assert archive.tag(a, "mango", "zebra").tags == ("zebra", "apple", "mango")
    assert archive.tags() == {"apple": 2, "mango": 1, "zebra": 1}
    assert ids(archive.search(tag=["apple", "zebra"])) == [a.id]  # all of them
    b.trash()
    assert archive.tags() == {"apple": 1, "mango": 1, "zebra": 1}  # the trash is not counted


def test_trash_hides_restore_brings_back_and_the_file_stays(archive):
    a = archive.save(make_generation("keep me"))
    b = archive.save(make_generation("bin me"))
    trashed = b.trash()
    assert trashed.trashed and isinstance(trashed.trashed_at, dt.datetime)
    assert b.path.is_file()
    assert ids(archive.search()) == [a.id] and len(archive) == 1
    assert ids(archive.search(trashed=True)) == [b.id]
    assert ids(archive.search(trashed=None)) == [b.id, a.id]
    assert archive.count(trashed=True) == 1 and archive.count(trashed=None) == 2
    assert archive.search("bin") == [] and ids(archive.search("bin", trashed=True)) == [b.id]
    assert trashed.trash().trashed_at == trashed.trashed_at  # trashing again keeps the time
    assert trashed.restore().trashed is False
    assert ids(archive.search()) == [b.id, a.id]


def test_empty_trash_deletes_files_thumbnails_rows_and_says_how_much(archive):
    a = archive.save(make_generation("stays", raw=png_bytes(size=(80, 80))), tags=["t"])
    ref = png_bytes((1, 2, 3))
    b = archive.save(make_generation("goes", references=[ref]), tags=["t", "gone"])
    c = archive.save(make_generation("goes too"))
    b.thumbnail_bytes()
    size = b.path.stat().st_size + b.thumb_path.stat().st_size + c.path.stat().st_size
    size += len(ref)
    b.trash()
    c.trash()
    result = archive.empty_trash()
    assert result.count == 2 and result.bytes_freed == size
    assert str(result).startswith("Emptied the trash: 2 images deleted,") and "freed" in str(result)
    assert not b.path.exists() and not b.thumb_path.exists() and not c.path.exists()
    assert not (archive.root / "references" / b.reference_hash).exists()
    assert a.path.is_file() and ids(archive.search(trashed=None)) == [a.id]
    assert archive.tags() == {"t": 1} and archive.search("goes", trashed=None) == []
    assert str(archive.empty_trash()) == "The trash is empty; nothing was deleted."


def test_words_match_as_prefixes_case_and_accents_ignored(archive):
    a = archive.save(make_generation("A Lighthouse at dusk, café"))
    b = archive.save(make_generation("lighthouses and 100% fox_style"))
    neg = make_generation("plain")
    neg.params["negative_prompt"] = "blurry lighthouse"
    c = archive.save(neg)
    assert set(ids(archive.search("lightho"))) == {a.id, b.id, c.id}  # negative prompt too
    assert ids(archive.search("lighthouse dusk")) == [a.id]  # every word
    assert ids(archive.search("CAFE")) == [a.id]
    assert ids(archive.search("100%")) == [b.id]
    assert archive.count("lightho") == 3 and archive.count("whale") == 0
    assert ids(archive.search("%")) == [b.id]  # punctuation only: as typed, anywhere


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=40))
def test_no_search_text_ever_raises(tmp_path_factory, text):
    archive = _shared_archive(tmp_path_factory)
    found = archive.search(text)
    assert archive.count(text) == len(found)


_archives: dict[str, Archive] = {}


def _shared_archive(factory) -> Archive:
    if "a" not in _archives:
        arch = Archive(factory.mktemp("fuzz"), settings=Settings())
        for prompt in ['say "hi"', "NEAR(a b)", "a* OR b", "col:umn ^x", "🦊 fox", "(paren"]:
            arch.save(make_generation(prompt))
        _archives["a"] = arch
    return _archives["a"]


def test_filters_combine_and_menus_list_distinct_values(archive):
    a = archive.save(make_generation("one", lora="detail_tweaker"), batch_id="b1")
    g = make_generation("two")
    g.model = "pony"
    b = archive.save(g, batch_id="b2")
    assert archive.models() == ["animagine", "pony"] and archive.loras() == ["detail_tweaker"]
    assert ids(archive.search(lora="detail_tweaker")) == [a.id]
    assert ids(archive.search(model="pony", batch="b2")) == [b.id]
    assert archive.search(model="pony", batch="b1") == []
    assert archive.count(model="animagine", lora="detail_tweaker", batch="b1") == 1
    assert ids(archive.search(limit=1, offset=1)) == [a.id]
    with pytest.raises(InvalidRequestError, match="time"):
        archive.search(since="last tuesday")
    with pytest.raises(InvalidRequestError, match="limit"):
        archive.search(limit=-1)


def test_unknown_ids_raise_a_package_error_that_is_also_a_key_error(archive):
    with pytest.raises(RecordNotFoundError) as info:
        archive.star("nope")
    assert isinstance(info.value, KeyError) and isinstance(info.value, PixeryError)
    assert "nope" in str(info.value)
    with pytest.raises(KeyError):
        archive.tag("nope", "x")


def test_a_file_deleted_by_hand_shows_as_missing_and_can_be_forgotten(archive):
    a = archive.save(make_generation("still here"))
    b = archive.save(make_generation("deleted by hand"))
    b.path.unlink()
    page = archive.search()
    assert ids(page) == [b.id, a.id]
    assert [r.missing for r in page] == [True, False]
    html = page._repr_html_()
    assert "file missing" in html and html.count("data:image/jpeg;base64,") == 1
    with pytest.raises(PixeryError, match="missing"):
        page[0].thumbnail_bytes()
    result = archive.forget_missing()
    assert result.count == 1 and str(result) == "Forgot 1 record whose image file was gone."
    assert ids(archive.search()) == [a.id] and archive.search("deleted") == []
    assert archive.forget_missing().count == 0


@pytest.mark.parametrize("damage", [b"", b"\xff\xd8\xff\xe0 cut off", b"not a jpeg at all"])
def test_a_damaged_thumbnail_is_made_again(archive, damage):
    rec = archive.save(make_generation())
    good = rec.thumbnail_bytes()
    rec.thumb_path.write_bytes(damage)
    again = archive.get(rec.id).thumbnail_bytes()
    assert again[:3] == b"\xff\xd8\xff" and again[-2:] == b"\xff\xd9"
    assert rec.thumb_path.read_bytes() == again and len(again) == len(good)


def test_save_records_the_parent_and_the_record_finds_parent_and_children(archive):
    root = archive.save(make_generation("root"))
    child = archive.save(make_generation("child"), parent_id=root.id)
    other = archive.save(make_generation("other child"), parent_id=root.id)
    assert child.parent_id == root.id and archive.get(child.id).parent.id == root.id
    assert root.parent is None
    assert ids(root.children()) == [other.id, child.id]
    other.trash()
    assert ids(root.children()) == [child.id]
    root.trash()
    archive.empty_trash()
    assert archive.get(child.id).parent is None  # gone: None, not an error


def test_regenerate_records_the_record_it_came_from(sim, tmp_path):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path)
    g = asyncio.run(px.agenerate("a castle", model="pony", seed=3, settings=settings))
    arch = Archive(tmp_path, settings=settings)
    rec = arch.get(g.id)
    again = asyncio.run(rec.aregenerate(settings=settings))
    child = arch.get(again.id)
    assert child.parent_id == rec.id and child.params["parent_id"] == rec.id
    assert ids(rec.children()) == [child.id]
    grandchild = child.regenerate(seed=4, settings=settings)
    assert arch.get(grandchild.id).parent.id == child.id
    plain = asyncio.run(px.agenerate("after", model="pony", seed=5, settings=settings))
    assert arch.get(plain.id).parent_id is None  # the lineage ends with the regenerate call


def test_a_common_word_or_tag_finds_the_same_page_walking_in_order(archive, monkeypatch):
    """Above COMMON_MATCHES the query walks the rows newest first instead of sorting the
    matches: the same records in the same order, whichever way."""
    from pixery_widgets.archive import finder

    for n in range(12):
        archive.save(make_generation(f"fox {'lighthouse' if n % 3 else 'castle'} {n}", n),
                     tags=["keep"] * (n % 2) + ["all"], batch_id=f"b{n % 2}")  # fmt: skip
    queries = [
        dict(text="lightho"), dict(text="fox", tag="keep"), dict(tag="all", batch="b0"),
        dict(text="lighthouse", limit=2, offset=3), dict(text="castle", tag=["keep", "all"]),
    ]  # fmt: skip
    sorted_way = [ids(archive.search(**q)) for q in queries]
    monkeypatch.setattr(finder, "COMMON_MATCHES", 1)
    assert [ids(archive.search(**q)) for q in queries] == sorted_way
    assert [len(p) for p in sorted_way] == [8, 6, 6, 2, 2]


def test_the_word_index_stays_whole_when_rows_go_before_or_after_it_caught_up(archive, monkeypatch):
    monkeypatch.setattr(Archive, "_words_later", lambda self: None)  # no background catch-up
    early = archive.save(make_generation("lighthouse early"))
    archive.search("lighthouse")  # indexed now
    late = [archive.save(make_generation(f"lighthouse late {n}")) for n in range(3)]
    for rec in (early, late[0]):  # one indexed, one not yet
        rec.trash()
    archive.empty_trash()
    again = archive.save(make_generation("lighthouse again"))  # its seq is never a reused one
    assert {r.id for r in archive.search("lighthouse")} == {late[1].id, late[2].id, again.id}
    assert archive.search("early") == [] and archive.count("late") == 2
    with archive._index.write() as conn:  # FTS5 raises if the index disagrees with the rows
        conn.execute(
            "INSERT INTO generations_fts (generations_fts, rank) VALUES ('integrity-check', 1)"
        )


def test_search_and_count_show_the_filters_and_refuse_an_unknown_one_in_words(archive):
    import inspect

    from pixery_widgets.archive.index import Filters

    declared = [
        p.name
        for p in inspect.signature(Filters.__init__).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for method in (archive.search, archive.count):
        shown = inspect.signature(method).parameters
        assert all(name in shown for name in declared)
    assert list(inspect.signature(archive.search).parameters)[-3:] == ["limit", "offset", "filters"]
    archive.save(make_generation("a fox"))
    assert archive.count(model="animagine") == len(archive.search(model="animagine")) == 1
    with pytest.raises(InvalidRequestError, match=r"no 'stared'\. Did you mean 'starred'\?"):
        archive.search(stared=True)
    with pytest.raises(InvalidRequestError, match="Filters: model, lora"):
        archive.count(colour="red")
