"""Keeping the index true to the files: reindex, empty the trash, forget missing files.

The files are the archive; the index is a cache of them. These are the slow,
rare walks over the whole archive that put the two back in step, each
saying what it did.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import ArchiveError
from .index import INSERT_OR_IGNORE, row_from_fields
from .metadata import fields_from_info
from .png import image_digest, read_text_chunks

if TYPE_CHECKING:
    import sqlite3

    from .store import Archive

__all__ = ["Cleanup", "empty_trash", "forget_missing", "index_file", "read_info", "reindex"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cleanup:
    """What a clean-up did: how many records it removed, how many bytes it freed, in words."""

    count: int
    bytes_freed: int
    message: str

    def __str__(self) -> str:
        return self.message

    def __int__(self) -> int:
        return self.count


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    if n < 1_000_000:
        return f"{n / 1000:.0f} KB"
    return f"{n / 1_000_000:.1f} MB"


def _images(n: int) -> str:
    return f"{n} image{'s' if n != 1 else ''}"


def _delete_rows(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Rows and their tags (their words go by trigger), in chunks (SQLite caps the ``?``)."""
    for start in range(0, len(ids), 500):
        chunk = tuple(ids[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        conn.execute(f"DELETE FROM tags WHERE record_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM generations WHERE id IN ({marks})", chunk)


def _unlink(path: Path) -> int:
    """Remove a file; the bytes freed (0 when it was already gone). Raises ``OSError``."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def _drop_unused_references(archive: Archive, hashes: Iterable[str]) -> int:
    freed = 0
    for ref_hash in {h for h in hashes if h}:
        used = archive._query(
            "SELECT 1 FROM generations WHERE reference_hash = ? LIMIT 1", (ref_hash,)
        )
        folder = archive.root / "references" / ref_hash
        if used or not folder.is_dir():
            continue
        try:
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            shutil.rmtree(folder)
        except OSError as exc:
            log.warning("could not remove unused references %s: %s", folder, exc)
            continue
        freed += size
    return freed


def empty_trash(archive: Archive) -> Cleanup:
    """Delete every trashed record: its image, its thumbnail, its row, its tags, and
    reference images no other record uses. A file that cannot be deleted keeps its row."""
    rows = archive._query(
        "SELECT id, path, thumb_path, reference_hash FROM generations WHERE trashed_at IS NOT NULL"
    )
    gone: list[str] = []
    stuck: list[str] = []
    freed = 0
    for row in rows:
        try:
            freed += _unlink(archive.root / row["path"])
            if row["thumb_path"]:
                freed += _unlink(archive.root / row["thumb_path"])
        except OSError as exc:
            stuck.append(f"{row['path']}: {exc.strerror or exc}")
            continue
        gone.append(row["id"])
    with archive._index.write("remove the trashed images from the archive index") as conn:
        _delete_rows(conn, gone)
    freed += _drop_unused_references(archive, (r["reference_hash"] for r in rows))
    if not rows:
        message = "The trash is empty; nothing was deleted."
    else:
        message = f"Emptied the trash: {_images(len(gone))} deleted, {_size(freed)} freed."
    if stuck:
        message += f" {_images(len(stuck))} could not be deleted ({'; '.join(stuck[:3])})."
    return Cleanup(len(gone), freed, message)


def forget_missing(archive: Archive) -> Cleanup:
    """Drop the rows (tags, words, thumbnails) of images whose file is gone."""
    rows = archive._query("SELECT id, path, thumb_path FROM generations")
    missing = [r for r in rows if not (archive.root / r["path"]).is_file()]
    freed = 0
    for row in missing:
        if row["thumb_path"]:
            with contextlib.suppress(OSError):  # a thumbnail without its row is harmless
                freed += _unlink(archive.root / row["thumb_path"])
    with archive._index.write("remove the records of missing files") as conn:
        _delete_rows(conn, [r["id"] for r in missing])
    if not missing:
        return Cleanup(0, 0, "Every record has its image file; nothing to forget.")
    n = len(missing)
    message = f"Forgot {n} record{'s' if n != 1 else ''} whose image file was gone."
    return Cleanup(n, freed, message)


def read_info(raw: bytes) -> tuple[dict[str, Any], str] | None:
    """The JSON a pixery PNG carries (and its text), or None for any other file."""
    text = read_text_chunks(raw).get("pixery")
    try:
        info = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(info, dict) or "id" not in info or "created_at" not in info:
        return None
    return info, text or "{}"


def _same_save(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two JSONs of one ``Generation`` saved twice: equal but for the id and the time."""
    drop = ("id", "created_at")
    return {k: v for k, v in a.items() if k not in drop} == {
        k: v for k, v in b.items() if k not in drop
    }


def _copy_of(archive: Archive, info: dict[str, Any], raw: bytes) -> str | None:
    """The id of an indexed record this file is a second copy of (the first release's
    retry wrote one under a new id), or None."""
    rows = archive._query(
        "SELECT id, path FROM generations WHERE model = ? AND prompt = ? AND seed IS ?",
        (str(info.get("model") or ""), str(info.get("prompt") or ""), info.get("seed")),
    )
    digest = None
    for row in rows:
        try:
            other = (archive.root / row["path"]).read_bytes()
        except OSError:
            continue
        found = read_info(other)
        if found is None or not _same_save(found[0], info):
            continue
        digest = digest or image_digest(raw)
        if image_digest(other) == digest:
            return str(row["id"])
    return None


def _set_aside(archive: Archive, path: Path) -> None:
    """Move a duplicate out of ``images/`` (kept, never deleted: the user decides)."""
    folder = archive.root / "duplicates"
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.stem}-{n}{path.suffix}"
        n += 1
    os.replace(path, target)
    log.info("reindex: %s is a copy of an archived image; moved to %s", path, target)


def index_file(archive: Archive, png_path: Path, known: dict[str, str]) -> bool:
    """Index one PNG of ``images/`` unless its image is indexed already; True if added.

    ``known`` maps the indexed ids to their paths (updated here). A copy of an
    indexed image (the same id in its ``pixery`` chunk, whatever the file is
    called, or the same image saved twice) is moved to ``duplicates/``.
    """
    rel_path = str(png_path.relative_to(archive.root))
    raw = png_path.read_bytes()
    found = read_info(raw)
    if found is None:
        return False
    info, text = found
    gen_id = str(info["id"])
    if gen_id in known:
        if known[gen_id] != rel_path:
            if (archive.root / known[gen_id]).is_file():
                _set_aside(archive, png_path)
            else:  # its row's file was moved here by hand: follow it
                with archive._index.write("update a moved image's path") as conn:
                    conn.execute("UPDATE generations SET path = ? WHERE id = ?", (rel_path, gen_id))
                known[gen_id] = rel_path
        return False
    if _copy_of(archive, info, raw) is not None:
        _set_aside(archive, png_path)
        return False
    rel_thumb = os.path.join("thumbs", png_path.parent.name, f"{gen_id}.jpg")
    row = row_from_fields(fields_from_info(info), info["created_at"], rel_path, rel_thumb, text)
    with archive._index.write("add a found image to the archive index") as conn:
        added = conn.execute(INSERT_OR_IGNORE, row).rowcount > 0
    known[gen_id] = rel_path
    return added


def reindex(archive: Archive) -> int:
    """Add every archived PNG without a row, from the JSON it carries; the count added."""
    known = {str(r[0]): str(r[1]) for r in archive._query("SELECT id, path FROM generations")}
    by_path = set(known.values())
    images = archive.root / "images"
    added = 0
    try:
        paths = sorted(images.glob("*/*.png"))
    except OSError as exc:
        raise ArchiveError(f"Could not list the images in {images}: {exc}.") from None
    for png_path in paths:
        if str(png_path.relative_to(archive.root)) in by_path:
            continue  # indexed under this very name
        try:
            added += index_file(archive, png_path, known)
        except OSError as exc:  # unreadable, or vanished meanwhile: the others go on
            log.warning("reindex skipped %s: %s", png_path, exc)
    return added
