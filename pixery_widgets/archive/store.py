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
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..core.config import Settings, load_settings
from ..core.errors import ArchiveError
from ..core.types import Generation
from .files import GroupSync, as_png, reference_ext, thumbnail, write_atomic, write_thumbnail
from .index import (
    COLUMNS,
    INSERT,
    INSERT_OR_IGNORE,
    SCHEMA,
    like_escape,
    row_from_fields,
    tags_text,
    tags_tuple,
    to_iso,
)
from .infotext import a1111_parameters
from .metadata import fields_from_info, generation_info, new_id, slug, utcnow
from .png import add_text_chunks, read_text_chunks
from .record import ArchiveRecord, Records

__all__ = ["Archive"]


class Archive:
    """Every image this package made: on disk, indexed, searchable, regenerable.

    ``Archive()`` opens the configured directory (``PIXERY_ARCHIVE_DIR``, default
    ``./pixery-out``), creating it if needed. Safe to use from several threads
    and processes at once (SQLite in WAL mode).
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
        self._lock = threading.Lock()
        self._saving_lock = threading.Lock()
        self._saving: dict[int, threading.Event] = {}
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixery-archive")
        self._durable = GroupSync(self._background)
        self.db_path = self.root / "index.sqlite"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.db_path, check_same_thread=False, timeout=10.0)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ArchiveError(f"Could not open the image archive at {self.root}: {exc}.") from None

    def __repr__(self) -> str:
        return f"Archive({str(self.root)!r}, {len(self)} images)"

    def close(self) -> None:
        self._background.shutdown(wait=True)
        with self._lock:
            self._conn.close()

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM generations", ())[0][0])

    # -- writing --------------------------------------------------------------------------------

    def save(
        self,
        generation: Generation,
        *,
        batch_id: str | None = None,
        tags: Iterable[str] = (),
    ) -> ArchiveRecord:
        """Write ``generation`` to disk and the index; sets ``generation.path`` and ``.id``.

        The file is in place before its row exists. Raises ``ArchiveError``
        (with the generation attached as ``.generation``) when either fails.
        Saving a generation already in this archive (or being saved by another
        thread) returns its record instead of writing a second copy.
        """
        record = self._save_once(generation, batch_id=batch_id, tags=tuple(tags), want_record=True)
        assert record is not None
        return record

    def _keep(self, generation: Generation) -> None:
        """``save`` without building the record nobody reads (``agenerate``'s hot path)."""
        self._save_once(generation, batch_id=None, tags=(), want_record=False)

    def _save_once(
        self,
        generation: Generation,
        *,
        batch_id: str | None,
        tags: tuple[str, ...],
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
            return self._save(generation, batch_id=batch_id, tags=tags, want_record=want_record)
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
        want_record: bool = True,
    ) -> ArchiveRecord | None:
        now = utcnow()
        gen_id = new_id(now)
        info = generation_info(generation, gen_id=gen_id, created_at=now, batch_id=batch_id)
        day = f"{now:%Y-%m-%d}"
        seed = f"_s{generation.seed}" if generation.seed is not None else ""
        rel_path = os.path.join("images", day, f"{gen_id}_{slug(generation.model)}{seed}.png")
        rel_thumb = os.path.join("thumbs", day, f"{gen_id}.jpg")
        final = self.root / rel_path
        try:
            pixery_json = self._scrub(json.dumps(info, ensure_ascii=True, default=str))
            texts = {"parameters": self._scrub(a1111_parameters(info)), "pixery": pixery_json}
            png = add_text_chunks(as_png(generation.png_bytes), texts)
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
        fields = fields_from_info(info)
        row = row_from_fields(
            fields, info["created_at"], rel_path, rel_thumb, tags_text(tags), pixery_json
        )
        try:
            self._insert(row)
        except sqlite3.Error as exc:
            raise self._error(
                f"The image was saved to {final} but could not be added to the archive index "
                f"({exc}); Archive().reindex() will add it.",
                generation,
            ) from exc
        generation.path = final
        generation.id = gen_id
        # The fsync follows in the background. The thumbnail (decoding a 1024² PNG
        # costs more than the whole save) is made when first shown, or by a batch
        # that needs it for its grid anyway (``athumbnail``), then kept on disk.
        self._durable.add(final)
        if not want_record:
            return None
        return self._record_from_info(
            info, Path(rel_path), Path(rel_thumb), tags=tags, params_json=pixery_json
        )

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
        self, generation: Generation, *, batch_id: str | None = None, tags: Iterable[str] = ()
    ) -> ArchiveRecord:
        """``save`` off the event loop (encoding and writing run in a worker thread)."""
        return await asyncio.to_thread(self.save, generation, batch_id=batch_id, tags=tuple(tags))

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
        files = (
            sorted((p for p in folder.glob("*.*") if p.stem.isdigit()), key=lambda p: int(p.stem))
            if folder.is_dir()
            else []
        )
        if not files:
            raise ArchiveError(
                f"The reference image(s) {ref_hash} are not in the archive at {self.root}; "
                "pass reference= to regenerate."
            )
        return [p.read_bytes() for p in files]

    def _insert(self, row: tuple[Any, ...], *, ignore: bool = False) -> bool:
        """Add one index row (``row_from_fields``); False when ``ignore`` and it is there."""
        with self._lock, self._conn:
            cursor = self._conn.execute(INSERT_OR_IGNORE if ignore else INSERT, row)
        return cursor.rowcount > 0

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

    def tag(self, record_id: str | ArchiveRecord, *tags: str) -> ArchiveRecord:
        """Add ``tags`` to a record; returns the updated record."""
        rec = self.get(record_id.id if isinstance(record_id, ArchiveRecord) else record_id)
        merged = tuple(dict.fromkeys((*rec.tags, *(t.strip() for t in tags if t.strip()))))
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE generations SET tags = ? WHERE id = ?", (tags_text(merged), rec.id)
            )
        return self.get(rec.id)

    def reindex(self) -> int:
        """Add every archived PNG that has no row (a crash between file and row); the count.

        The row is rebuilt from the JSON chunk the PNG carries; PNGs without one are skipped.
        Thumbnails are made when first shown, as for any other record.
        """
        known = {row[0] for row in self._query("SELECT id FROM generations", ())}
        added = 0
        for png_path in sorted((self.root / "images").glob("*/*.png")):
            gen_id = png_path.name.split("_", 1)[0]
            if gen_id in known:
                continue
            try:
                raw = png_path.read_bytes()
                text = read_text_chunks(raw).get("pixery")
                info = json.loads(text) if text else None
            except (OSError, ValueError):
                continue
            if not isinstance(info, dict) or "id" not in info or "created_at" not in info:
                continue
            rel_path = str(png_path.relative_to(self.root))
            rel_thumb = os.path.join("thumbs", png_path.parent.name, f"{info['id']}.jpg")
            row = row_from_fields(
                fields_from_info(info), info["created_at"], rel_path, rel_thumb, "", text or "{}"
            )
            if self._insert(row, ignore=True):
                added += 1
        return added

    # -- reading ----------------------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, tuple(args)))
            except sqlite3.Error as exc:
                raise ArchiveError(
                    f"Could not read the archive index {self.db_path}: {exc}."
                ) from None

    def _from_row(self, row: sqlite3.Row) -> ArchiveRecord:
        info = dict(row)
        params = json.loads(info.pop("params_json") or "{}")
        thumb = info.get("thumb_path")
        return ArchiveRecord(
            **{
                k: info[k]
                for k in COLUMNS
                if k not in ("params_json", "created_at", "path", "thumb_path", "tags")
            },
            created_at=dt.datetime.fromisoformat(info["created_at"]),
            path=self.root / info["path"],
            thumb_path=self.root / thumb if thumb else None,
            tags=tags_tuple(info["tags"]),
            params=params,
            archive=self,
        )

    def get(self, record_id: str) -> ArchiveRecord:
        """The record with this id; ``KeyError`` if there is none."""
        rows = self._query("SELECT * FROM generations WHERE id = ?", (record_id,))
        if not rows:
            raise KeyError(f"No archived image with id {record_id!r} in {self.root}.")
        return self._from_row(rows[0])

    def records(self, limit: int | None = 100, offset: int = 0) -> Records:
        """The newest records first."""
        return self.search(limit=limit, offset=offset)

    def search(
        self,
        text: str | None = None,
        *,
        model: str | None = None,
        tag: str | None = None,
        since: dt.datetime | dt.date | str | float | None = None,
        until: dt.datetime | dt.date | str | float | None = None,
        batch: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> Records:
        """Records matching every filter given, newest first.

        ``text`` matches prompt or negative prompt (case-insensitive substring);
        ``since``/``until`` take a datetime, a date, an ISO string or a Unix time.
        """
        where: list[str] = []
        args: list[Any] = []
        if text:
            where.append("(prompt LIKE ? ESCAPE '\\' OR negative_prompt LIKE ? ESCAPE '\\')")
            args += [f"%{like_escape(text)}%"] * 2
        if model:
            where.append("model = ?")
            args.append(model)
        if tag:
            where.append("tags LIKE ? ESCAPE '\\'")
            args.append(f"%,{like_escape(tag.strip())},%")
        if since is not None:
            where.append("created_at >= ?")
            args.append(to_iso(since))
        if until is not None:
            where.append("created_at < ?")
            args.append(to_iso(until))
        if batch:
            where.append("batch_id = ?")
            args.append(batch)
        sql = "SELECT * FROM generations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [int(limit), int(offset)]
        return Records(self._from_row(r) for r in self._query(sql, args))

    def _repr_html_(self) -> str:
        return self.records(limit=50)._repr_html_()
