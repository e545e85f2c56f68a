"""How ``agenerate`` archives: in the provider's decoding thread, before it returns.

The self-hosted provider hands each decoded image to ``on_image`` in the same
worker thread (one hop off the event loop instead of two); a provider that does
not call it is archived by ``agenerate`` itself. Either way the file and its
row exist when ``agenerate`` returns, and a failed save still counts the image.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from pathlib import Path

import pytest

import pixery_widgets as px
from pixery_widgets.archive import Archive, get_archive, write_atomic
from pixery_widgets.archive import files as archive_files
from pixery_widgets.core.config import Settings
from pixery_widgets.core.errors import ArchiveError
from pixery_widgets.providers import _selfhosted_answers
from pixery_widgets.providers.selfhosted import SelfHostedProvider
from pixery_widgets.session.ledger import LEDGER
from pixery_widgets.session.validation import build_request


def run(coro):
    return asyncio.run(coro)


def test_the_selfhosted_provider_calls_on_image_once_in_its_worker_thread(sim):
    settings = Settings(selfhosted_url=sim.url)
    request = build_request("a harbour", "animagine", seed=4)
    seen: list[tuple[int, object]] = []

    def on_image(generation) -> None:
        seen.append((threading.get_ident(), generation))

    g = run(SelfHostedProvider().generate(request, settings, on_image=on_image))
    assert len(seen) == 1
    thread, handed = seen[0]
    assert handed is g and g.png_bytes.startswith(b"\x89PNG")
    assert thread != threading.get_ident()  # not on the event loop's thread


def test_agenerate_archives_in_the_thread_that_decoded_the_image(sim, tmp_path, monkeypatch):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "out")
    threads: dict[str, int] = {}
    real_parse, real_keep = _selfhosted_answers.parse_generate, Archive._keep

    def parse(data):
        threads["decoded"] = threading.get_ident()
        return real_parse(data)

    def keep(self, generation):
        threads["archived"] = threading.get_ident()
        real_keep(self, generation)
        assert generation.path.is_file()  # complete under its final name...
        assert self.get(generation.id).path == generation.path  # ...and in the index

    monkeypatch.setattr(_selfhosted_answers, "parse_generate", parse)
    monkeypatch.setattr(Archive, "_keep", keep)
    g = run(px.agenerate("one hop", seed=5, settings=settings))
    assert threads["archived"] == threads["decoded"] != threading.get_ident()
    assert g.path is not None and g.path.is_file()
    assert Archive(tmp_path / "out", settings=Settings()).get(g.id).prompt == "one hop"


def test_agenerate_archives_itself_when_the_provider_ignores_on_image(sim, tmp_path, monkeypatch):
    settings = Settings(selfhosted_url=sim.url, archive_dir=tmp_path / "out")
    real_generate = SelfHostedProvider.generate

    async def ignoring(self, request, settings, *, on_image=None):
        return await real_generate(self, request, settings)

    monkeypatch.setattr(SelfHostedProvider, "generate", ignoring)
    images_before = LEDGER.images
    g = run(px.agenerate("saved by the caller", seed=6, settings=settings))
    assert g.path is not None and g.path.is_file()
    assert Archive(tmp_path / "out", settings=Settings()).get(g.id).seed == 6
    assert LEDGER.images == images_before + 1


def test_an_archive_that_cannot_open_still_counts_the_image_and_carries_it(sim, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive should go")
    settings = Settings(selfhosted_url=sim.url, archive_dir=blocker)
    images_before = LEDGER.images
    with pytest.raises(ArchiveError) as info:
        run(px.agenerate("nowhere to go", seed=8, settings=settings))
    assert info.value.generation.png_bytes.startswith(b"\x89PNG")
    assert info.value.generation.path is None
    assert LEDGER.images == images_before + 1


def test_write_atomic_steps_over_a_temporary_name_left_by_another_process(tmp_path, monkeypatch):
    target = tmp_path / "day" / "img.png"
    target.parent.mkdir()
    monkeypatch.setattr(archive_files, "_temp_serial", itertools.count(5))
    leftover = target.parent / f".img.png.{os.getpid()}-5.tmp"
    leftover.write_bytes(b"someone else's")
    write_atomic(target, b"whole image", durable=False)
    assert target.read_bytes() == b"whole image"
    assert leftover.read_bytes() == b"someone else's"  # not touched
    assert sorted(p.name for p in target.parent.iterdir()) == [leftover.name, "img.png"]


def test_write_atomic_makes_a_missing_folder(tmp_path: Path):
    target = tmp_path / "a" / "b" / "img.png"
    write_atomic(target, b"data", durable=False)
    assert target.read_bytes() == b"data"
    assert [p.name for p in target.parent.iterdir()] == ["img.png"]


def test_get_archive_never_hands_out_a_closed_archive_after_the_folder_is_deleted(tmp_path):
    import shutil

    settings = Settings()
    one, other = tmp_path / "out", tmp_path / "x" / ".." / "out"
    first = get_archive(one, settings)
    assert get_archive(other, settings) is first and get_archive(one, settings) is first
    shutil.rmtree(one)
    fresh = get_archive(one, settings)
    assert fresh is not first and len(fresh) == 0
    assert get_archive(other, settings) is fresh
