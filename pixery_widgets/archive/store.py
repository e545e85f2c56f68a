"""The archive: every image kept on disk the moment it arrives, and an index to find it.

A paid image must never be lost, so a file is written atomically (a temporary
file in the same directory, then ``os.replace``) and only then is its row
inserted in the SQLite index, all before ``agenerate`` returns. A crash in
between leaves at most a file without a row; ``Archive.reindex()`` adds it
back from the JSON the PNG carries. The fsync (for power loss) follows in a
background thread, in rounds that share one folder fsync among the images of a
fast batch; thumbnails are made the first time they are shown (or by a batch,
which needs them for its grid anyway).

Layout under the archive directory (``PIXERY_ARCHIVE_DIR``, default ``./pixery-out``)::

    index.sqlite                        one row per generation (WAL mode)
    images/2025-01-31/<id>_<model>_s<seed>.png
    thumbs/2025-01-31/<id>.jpg          small JPEG for grids (made when first shown)
    references/<reference_hash>/<n>.png reference images, so records regenerate

Each PNG holds an A1111-style ``parameters`` text chunk (read by other Stable
Diffusion tools) and the full JSON in a ``pixery`` chunk. Chunks are inserted
into the received byte stream: the image data is kept exactly as it arrived.
API keys never reach the archive: parameters come from
``GenerationRequest.describe()``, and every text written is scrubbed of the
configured keys besides.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..core.config import Settings, load_settings
from ..core.errors import ArchiveError
from ..core.types import Generation
from . import upkeep
from .changes import Changes
from .events import announce_saved
from .files import GroupSync, as_png, reference_ext, thumbnail, write_atomic, write_thumbnail
from .finder import Finder
from .index import INSERT, INSERT_OR_IGNORE, Index, clean_tags, row_from_fields
from .infotext import a1111_parameters
from .leftovers import recover_leftovers
from .metadata import fields_from_info, generation_info, new_id, slug, utcnow
from .png import text_chunk_parts
from .record import PARENT_ID, ArchiveRecord
from .upkeep import Cleanup

__all__ = ["Archive", "Cleanup"]

log = logging.getLogger(__name__)


class Archive(Finder, Changes):
    """Every image this package made: on disk, indexed, searchable, regenerable.

    ``Archive()`` opens the configured directory (``PIXERY_ARCHIVE_DIR``, default
    ``./pixery-out``), creating it if needed, and brings an index written by an
    earlier release up to date. Safe to use from several threads and processes at
    once (SQLite in WAL mode). Every method raises only this package's errors.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, settings: Settings | None = None
    ) -> None:
        settings = settings if settings is not None else load_settings()
        root = Path(path) if path is not None else settings.archive_dir
        self.root = root.expanduser().resolve()
        #: Scrubs any configured key from what is written (belt and braces: the
        #: request description holds none).
        self._scrub = settings.redact
        self._saving_lock = threading.Lock()
        self._saving: dict[int, threading.Event] = {}
        #: Images whose file is written but whose row could not be added: a retry adds
        #: only the row (never a second copy of the file).
        self._unindexed: weakref.WeakKeyDictionary[Generation, tuple[Path, tuple[Any, ...]]]
        self._unindexed = weakref.WeakKeyDictionary()
        self._words_queued = False
        self.db_path = self.root / "index.sqlite"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._index = Index(self.db_path)
        except (OSError, sqlite3.Error) as exc:
            raise ArchiveError(
                f"Could not open the image archive at {self.root}: "
                f"{getattr(exc, 'strerror', None) or exc}."
            ) from None
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixery-archive")
        self._durable = GroupSync(self._background)
        # What a process killed while saving left behind, off the caller's path (listing a
        # large archive takes a noticeable fraction of a second); ``flush()`` waits for it.
        self._background.submit(self._recover_leftovers)

    def _recover_leftovers(self) -> None:
        try:
            recover_leftovers(self)
        except ArchiveError as exc:  # opening must not fail for it: reindex() tries again
            log.warning("could not recover the leftovers in %s: %s", self.root, exc)
        self._catch_up_words()  # what an older release or a reindex added

    def __repr__(self) -> str:
        return f"Archive({str(self.root)!r}, {len(self)} images)"

    def close(self) -> None:
        self._background.shutdown(wait=True)
        self._index.close()

    def __len__(self) -> int:
        """The images not in the trash."""
        return self.count()

    # -- writing --------------------------------------------------------------------------------

    def save(
        self,
        generation: Generation,
        *,
        batch_id: str | None = None,
        tags: Iterable[str] = (),
        parent_id: str | None = None,
    ) -> ArchiveRecord:
        """Write ``generation`` to disk and the index; sets ``generation.path`` and ``.id``.

        The file is in place before its row exists. Raises ``ArchiveError``
        (with the generation attached as ``.generation``) when either fails.
        Saving a generation already in this archive (or being saved by another
        thread) returns its record instead of writing a second copy.
        ``parent_id`` records the image it was made from (``aregenerate`` sets it).
        """
        record = self._save_once(
            generation,
            batch_id=batch_id,
            tags=clean_tags(tags),
            parent_id=parent_id,
            want_record=True,
        )
        assert record is not None
        return record

    def _keep(self, generation: Generation) -> None:
        """``save`` without building the record nobody reads (``agenerate``'s hot path)."""
        self._save_once(generation, batch_id=None, tags=(), parent_id=None, want_record=False)

    def _save_once(
        self,
        generation: Generation,
        *,
        batch_id: str | None,
        tags: tuple[str, ...],
        parent_id: str | None,
        want_record: bool,
    ) -> ArchiveRecord | None:
        key = id(generation)
        while True:
            with self._saving_lock:
                if generation.id is not None and self._holds(generation.path):
                    return self.get(generation.id) if want_record else None
                waiter = self._saving.get(key)
                if waiter is None:
                    self._saving[key] = threading.Event()
                    break
            waiter.wait()
        try:
            with self._saving_lock:
                written = self._unindexed.get(generation)
            if written is not None and written[0].is_file():
                return self._add_row(generation, *written, tags=tags, want_record=want_record)
            return self._save(
                generation,
                batch_id=batch_id,
                tags=tags,
                parent_id=parent_id if parent_id is not None else PARENT_ID.get(),
                want_record=want_record,
            )
        finally:
            with self._saving_lock:
                self._saving.pop(key).set()

    def _holds(self, path: Path | None) -> bool:
        return path is not None and path.is_relative_to(self.root) and path.is_file()

    def _save(
        self,
        generation: Generation,
        *,
        batch_id: str | None,
        tags: tuple[str, ...],
        parent_id: str | None,
        want_record: bool = True,
    ) -> ArchiveRecord | None:
        now = utcnow()
        gen_id = new_id(now)
        info = generation_info(
            generation, gen_id=gen_id, created_at=now, batch_id=batch_id, parent_id=parent_id
        )
        day = f"{now:%Y-%m-%d}"
        seed = f"_s{generation.seed}" if generation.seed is not None else ""
        rel_path = os.path.join("images", day, f"{gen_id}_{slug(generation.model)}{seed}.png")
        rel_thumb = os.path.join("thumbs", day, f"{gen_id}.jpg")
        final = self.root / rel_path
        try:
            pixery_json = self._scrub(json.dumps(info, ensure_ascii=True, default=str))
            texts = {"parameters": self._scrub(a1111_parameters(info)), "pixery": pixery_json}
            # The received bytes around the new chunks, written piece by piece (no copy).
            png = text_chunk_parts(as_png(generation.png_bytes), texts)
            if generation.request is not None and generation.request.references:
                self._store_references(info["reference_hash"], generation.request.references)
            # Complete under its final name before this returns (safe against a dead
            # kernel); the fsync for power loss follows in the background.
            write_atomic(final, png, durable=False)
        except (OSError, ValueError) as exc:
            raise self._error(
                f"Could not save the image to {final}: {getattr(exc, 'strerror', None) or exc}. "
                "It was not archived; the image is still in memory (.png_bytes).",
                generation,
            ) from exc
        row = row_from_fields(
            fields_from_info(info), info["created_at"], rel_path, rel_thumb, pixery_json
        )
        with self._saving_lock:
            self._unindexed[generation] = (final, row)  # until the row is in
        self._add_row(generation, final, row, tags=tags, want_record=False)
        if not want_record:
            return None
        return self._record_from_info(
            info, Path(rel_path), Path(rel_thumb), tags=tags, params_json=pixery_json
        )

    def _add_row(
        self,
        generation: Generation,
        final: Path,
        row: tuple[Any, ...],
        *,
        tags: tuple[str, ...],
        want_record: bool,
    ) -> ArchiveRecord | None:
        """Index a file just written (or written by an earlier attempt whose row failed)."""
        try:
            self._insert(row, tags, ignore=True)  # a reindex may have added it meanwhile
        except (ArchiveError, sqlite3.Error) as exc:
            raise self._error(
                f"The image was saved to {final} but could not be added to the archive index "
                f"({exc}); saving it again (retry_failed() in a batch) or Archive().reindex() "
                "will add it without writing it twice.",
                generation,
            ) from exc
        with self._saving_lock:
            self._unindexed.pop(generation, None)
        generation.path = final
        generation.id = row[0]
        # The fsync follows in the background. The thumbnail (decoding a 1024² PNG
        # costs more than the whole save) is made when first shown, or by a batch
        # that needs it for its grid anyway (``athumbnail``), then kept on disk.
        self._durable.add(final)
        self._words_later()
        return self.get(row[0]) if want_record else None

    def _words_later(self) -> None:
        """Index the words of the images just saved on the background thread, in one
        batch for all that arrived meanwhile (a search does it at once if sooner)."""
        with self._saving_lock:
            if self._words_queued:
                return
            self._words_queued = True
        self._background.submit(self._catch_up_words)

    def _catch_up_words(self) -> None:
        with self._saving_lock:
            self._words_queued = False
        try:
            self._index.catch_up_words()
        except ArchiveError as exc:  # the next search, or the next save, tries again
            log.warning("could not index the newest images' words: %s", exc)

    async def athumbnail(self, record: ArchiveRecord, png: bytes) -> bytes:
        """The record's thumbnail, made off the event loop and kept beside the image."""
        thumb = await asyncio.to_thread(thumbnail, png)
        if record.thumb_path is not None:
            self._background.submit(write_thumbnail, thumb, record.thumb_path)
        return thumb

    def flush(self) -> None:
        """Wait until every fsync and thumbnail queued so far is done (tests, shutdown)."""
        self._background.submit(lambda: None).result()

    async def asave(
        self,
        generation: Generation,
        *,
        batch_id: str | None = None,
        tags: Iterable[str] = (),
        parent_id: str | None = None,
    ) -> ArchiveRecord:
        """``save`` off the event loop (encoding and writing run in a worker thread)."""
        return await asyncio.to_thread(
            self.save, generation, batch_id=batch_id, tags=tuple(tags), parent_id=parent_id
        )

    @staticmethod
    def _error(message: str, generation: Generation) -> ArchiveError:
        err = ArchiveError(message, provider=generation.provider, reason="could not save")
        err.generation = generation  # type: ignore[attr-defined]
        return err

    def _store_references(self, ref_hash: str, references: Sequence[bytes]) -> None:
        folder = self.root / "references" / ref_hash
        for n, raw in enumerate(references):
            target = folder / f"{n}.{reference_ext(raw)}"
            if not target.exists():
                write_atomic(target, raw)

    def reference_images(self, ref_hash: str) -> list[bytes]:
        """The reference images stored under ``ref_hash``, in their original order."""
        folder = self.root / "references" / ref_hash
        try:
            files = (
                sorted(
                    (p for p in folder.glob("*.*") if p.stem.isdigit()), key=lambda p: int(p.stem)
                )
                if folder.is_dir()
                else []
            )
            images = [p.read_bytes() for p in files]
        except OSError as exc:
            raise ArchiveError(f"Could not read the reference images in {folder}: {exc}.") from None
        if not images:
            raise ArchiveError(
                f"The reference image(s) {ref_hash} are not in the archive at {self.root}; "
                "pass reference= to regenerate."
            )
        return images

    def _insert(
        self, row: tuple[Any, ...], tags: Sequence[str] = (), *, ignore: bool = False
    ) -> bool:
        """Add one index row (``row_from_fields``) and its tags; False when ``ignore`` and
        it is there."""
        with self._index.write("add the image to the archive index") as conn:
            added = conn.execute(INSERT_OR_IGNORE if ignore else INSERT, row).rowcount > 0
            if tags:
                conn.executemany(
                    "INSERT OR IGNORE INTO tags (record_id, tag) VALUES (?, ?)",
                    [(row[0], t) for t in tags],
                )
        if added:
            announce_saved(self.root, str(row[0]))
        return added

    def _record_from_info(
        self,
        info: Mapping[str, Any],
        rel_path: Path,
        rel_thumb: Path | None,
        *,
        tags: tuple[str, ...] = (),
        params_json: str | None = None,
    ) -> ArchiveRecord:
        return ArchiveRecord(
            **fields_from_info(info),
            created_at=dt.datetime.fromisoformat(str(info["created_at"])),
            path=self.root / rel_path,
            thumb_path=self.root / rel_thumb if rel_thumb is not None else None,
            tags=tags,
            params=json.loads(params_json) if params_json else dict(info),
            archive=self,
        )

    def reindex(self) -> int:
        """Add every archived PNG that has no row (a crash between file and row); the count.

        The row is rebuilt from the JSON chunk the PNG carries (PNGs without one are
        skipped), and the word index is brought in step with the rows. Leftovers of a
        process killed while saving are recovered first (see ``leftovers``).
        """
        return recover_leftovers(self).indexed + upkeep.reindex(self)

    def empty_trash(self) -> Cleanup:
        """Delete the trashed images (files, thumbnails, rows, tags); says how much was freed."""
        return upkeep.empty_trash(self)

    def forget_missing(self) -> Cleanup:
        """Drop the records whose image file is gone (deleted by hand); says how many."""
        return upkeep.forget_missing(self)
