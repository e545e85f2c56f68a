"""The gallery's state and actions as plain Python: what is searched, what is shown, what a
click does.

``GalleryState`` holds the words and filters, the records loaded so far (newest
first, a page at a time) and the number of matches; an image archived while it
is open is added at its top (``arrived``). Its actions (star, tag, trash and
restore with an undo, export) change the archive and the records shown alike,
and answer with a sentence. The widget in ``widgets/gallery.py`` only draws this
and forwards the user's commands; tests drive it without a browser.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..archive import Archive, ArchiveRecord, a1111_parameters
from ..archive.index import clean_tags, to_iso
from ..core.errors import ArchiveError, InvalidRequestError, PixeryError

__all__ = [
    "FILTERS",
    "MAX_COMPARE",
    "Exported",
    "GalleryState",
    "clean_filters",
    "export_records",
    "plural",
]

#: The filters a gallery takes, and what each is.
FILTERS = {
    "model": "a model id",
    "lora": "a LoRA name",
    "tag": "a tag, or a list of tags (all of them)",
    "batch": "a batch id",
    "since": "a date or time (from)",
    "until": "a date (up to and including it) or a time (before it)",
    "starred": "True for starred images only, False for the others",
    "trashed": "True to show the trash instead",
}
#: Most images compared side by side.
MAX_COMPARE = 4


def plural(n: int, word: str = "image") -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def _text(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"The {key} filter is text; got {type(value).__name__}.")
    return value.strip() or None


def _time(key: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    if not isinstance(value, str):
        raise InvalidRequestError(f"The {key} filter is a date such as '2025-01-31'.")
    to_iso(value.strip())  # refused in words now, not at the next search
    return value.strip()


def _flag(key: str, value: Any, *, allow_false: bool) -> bool | None:
    if value is None or (value is False and not allow_false):
        return None
    if not isinstance(value, bool):
        raise InvalidRequestError(f"The {key} filter is True or False; got {value!r}.")
    return value


def clean_filters(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The filters, checked, with the empty ones dropped (JSON-able, as the widget holds them).

    Unknown names and values the archive cannot search by are refused with
    ``InvalidRequestError``, in words."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(FILTERS))
    if unknown:
        raise InvalidRequestError(
            f"Unknown gallery filter {', '.join(map(repr, unknown))}; "
            f"the filters are {', '.join(FILTERS)}."
        )
    out: dict[str, Any] = {}
    for key in ("model", "lora", "batch"):
        if (value := _text(key, raw.get(key))) is not None:
            out[key] = value
    tags = raw.get("tag")
    if isinstance(tags, str):
        tags = [tags] if tags.strip() else []
    if tags:
        out["tag"] = list(clean_tags(tags))
    for key in ("since", "until"):
        if (value := _time(key, raw.get(key))) is not None:
            out[key] = value
    if (starred := _flag("starred", raw.get("starred"), allow_false=True)) is not None:
        out["starred"] = starred
    if _flag("trashed", raw.get("trashed"), allow_false=False):
        out["trashed"] = True
    return out


def search_args(filters: Mapping[str, Any]) -> dict[str, Any]:
    """``Archive.search`` keywords for clean filters (a date alone as ``until`` counts its day)."""
    args: dict[str, Any] = {k: v for k, v in filters.items() if k not in ("until", "trashed")}
    until = filters.get("until")
    if until is not None:
        if len(until) == 10:  # a date: up to and including that day
            until = (dt.date.fromisoformat(until) + dt.timedelta(days=1)).isoformat()
        args["until"] = until
    args["trashed"] = bool(filters.get("trashed"))
    return args


@dataclass
class GalleryState:
    """The words, the filters, the records loaded (newest first) and the number of matches."""

    archive: Archive
    page_size: int = 60
    text: str = ""
    filters: dict[str, Any] = field(default_factory=dict)
    records: list[ArchiveRecord] = field(default_factory=list)
    total: int = 0
    #: The ids last moved to the trash, for ``undo``.
    undoable: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.page_size, bool) or not isinstance(self.page_size, int):
            raise InvalidRequestError(f"page_size is a whole number; got {self.page_size!r}.")
        if not 1 <= self.page_size <= 500:
            raise InvalidRequestError(f"page_size is from 1 to 500; got {self.page_size}.")

    # -- searching and paging -----------------------------------------------------------------

    def search(self, text: str | None = None, filters: Mapping[str, Any] | None = None) -> None:
        """Search again from the first page (``None`` keeps the words or the filters)."""
        if text is not None:
            if not isinstance(text, str):
                raise InvalidRequestError(f"Search words are text; got {type(text).__name__}.")
            self.text = text
        if filters is not None:
            self.filters = clean_filters(filters)
        self.records = self._page(0, self.page_size)
        self.total = self.archive.count(self.text or None, **search_args(self.filters))

    def _page(self, offset: int, limit: int, **narrow: Any) -> list[ArchiveRecord]:
        args = {**search_args(self.filters), **narrow}
        return list(self.archive.search(self.text or None, limit=limit, offset=offset, **args))

    @property
    def has_more(self) -> bool:
        return len(self.records) < self.total

    def more(self) -> list[ArchiveRecord]:
        """Load the next page; the records added."""
        if not self.has_more:
            return []
        known = {r.id for r in self.records}
        page = [r for r in self._page(len(self.records), self.page_size) if r.id not in known]
        self.records += page
        if not page:  # fewer than counted (deleted meanwhile): stop asking
            self.total = len(self.records)
        return page

    def reload(self) -> None:
        """Read the records shown again (after an action), keeping as many loaded."""
        count = max(self.page_size, len(self.records))
        self.records = self._page(0, count)
        self.total = self.archive.count(self.text or None, **search_args(self.filters))

    def arrived(self, record_id: str) -> ArchiveRecord | None:
        """A record just archived: added at the top if it matches the search; else ``None``."""
        if any(r.id == record_id for r in self.records):
            return None
        try:
            record = self.archive.get(record_id)
        except (KeyError, PixeryError):
            return None
        since = record.created_at.isoformat()
        mine = self.filters.get("since")
        narrow = {"since": max(since, to_iso(mine)) if mine else since}
        newest = self._page(0, self.page_size, **narrow)
        if all(r.id != record_id for r in newest):
            return None
        self.records.insert(0, record)
        self.records.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        self.total += 1
        return record

    # -- finding what an action is about ------------------------------------------------------

    def index_of(self, record_id: str) -> int:
        return next((i for i, r in enumerate(self.records) if r.id == record_id), -1)

    def get(self, record_id: str) -> ArchiveRecord:
        i = self.index_of(record_id)
        return self.records[i] if i >= 0 else self.archive.get(record_id)

    def _changed(self, records: Iterable[ArchiveRecord]) -> None:
        """Put records as they are now in place of the ones shown."""
        for record in records:
            i = self.index_of(record.id)
            if i >= 0:
                self.records[i] = record

    # -- actions (each answers with a sentence) -----------------------------------------------

    def star(self, ids: Sequence[str], starred: bool = True) -> str:
        changed = [self.archive.star(i, starred=starred) for i in ids]
        self._changed(changed)
        if self.filters.get("starred") is not None:
            self.reload()
        return f"{'Starred' if starred else 'Unstarred'} {plural(len(changed))}."

    def toggle_star(self, ids: Sequence[str]) -> str:
        """Star them all, or unstar them all when every one is starred already."""
        every = all(self.get(i).starred for i in ids)
        return self.star(ids, starred=not every)

    def tag(self, ids: Sequence[str], tags: Iterable[str]) -> str:
        cleaned = clean_tags(tags)
        if not cleaned:
            raise InvalidRequestError("Type a tag first.")
        self._changed([self.archive.tag(i, *cleaned) for i in ids])
        return f"Tagged {plural(len(ids))} {', '.join(map(repr, cleaned))}."

    def untag(self, ids: Sequence[str], tags: Iterable[str]) -> str:
        cleaned = clean_tags(tags)
        self._changed([self.archive.untag(i, *cleaned) for i in ids])
        if self.filters.get("tag"):
            self.reload()
        return f"Removed {', '.join(map(repr, cleaned))} from {plural(len(ids))}."

    def trash(self, ids: Sequence[str]) -> str:
        """Move to the trash (soft: ``undo`` brings them back; the files stay)."""
        for i in ids:
            self.archive.trash(i)
        self.undoable = list(ids)
        self.reload()
        return f"Moved {plural(len(ids))} to the trash."

    def restore(self, ids: Sequence[str]) -> str:
        for i in ids:
            self.archive.trash(i, trashed=False)
        self.undoable = []
        self.reload()
        return f"Restored {plural(len(ids))} from the trash."

    def undo(self) -> str:
        if not self.undoable:
            return "Nothing to undo."
        ids, self.undoable = self.undoable, []
        for i in ids:
            self.archive.trash(i, trashed=False)
        self.reload()
        return f"Brought {plural(len(ids))} back from the trash."

    def empty_trash(self) -> str:
        cleanup = self.archive.empty_trash()
        self.undoable = []
        self.reload()
        return cleanup.message

    def forget_missing(self) -> str:
        cleanup = self.archive.forget_missing()
        self.reload()
        return cleanup.message

    def compared(self, ids: Sequence[str]) -> list[ArchiveRecord]:
        """The records to compare, 2 to ``MAX_COMPARE`` of them."""
        unique = list(dict.fromkeys(ids))
        if not 2 <= len(unique) <= MAX_COMPARE:
            raise InvalidRequestError(
                f"Compare takes 2 to {MAX_COMPARE} images; {len(unique)} "
                f"{'is' if len(unique) == 1 else 'are'} selected."
            )
        return [self.get(i) for i in unique]


@dataclass(frozen=True)
class Exported:
    """What an export did: the files written, the images left out, in words."""

    folder: Path
    files: tuple[Path, ...]
    skipped: tuple[str, ...]
    message: str


def sidecar(record: ArchiveRecord) -> dict[str, Any]:
    """The JSON written beside an exported image: its parameters, tags, lineage, A1111 text."""
    return {
        "id": record.id,
        "created_at": record.created_at.isoformat(),
        "prompt": record.prompt,
        "negative_prompt": record.negative_prompt,
        "model": record.model,
        "provider": record.provider,
        "seed": record.seed,
        "width": record.width,
        "height": record.height,
        "steps": record.steps,
        "cfg_scale": record.cfg_scale,
        "lora": record.lora,
        "lora_scale": record.lora_scale,
        "reference_hash": record.reference_hash,
        "batch_id": record.batch_id,
        "parent_id": record.parent_id,
        "tags": list(record.tags),
        "starred": record.starred,
        "parameters": a1111_parameters(record.params or {}),
        "pixery": record.params,
    }


def export_records(records: Sequence[ArchiveRecord], folder: str | Path) -> Exported:
    """Copy each image into ``folder`` (made if needed) with a JSON sidecar of the same name.

    A record whose file is gone is left out (and named in the message)."""
    if not str(folder).strip():
        raise InvalidRequestError("Name a folder to export to.")
    target = Path(folder).expanduser()
    written: list[Path] = []
    skipped: list[str] = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for record in records:
            if record.missing:
                skipped.append(record.id)
                continue
            copy = target / record.path.name
            shutil.copy2(record.path, copy)
            side = copy.with_suffix(".json")
            side.write_text(json.dumps(sidecar(record), indent=2, ensure_ascii=False, default=str))
            written.append(copy)
    except OSError as exc:
        raise ArchiveError(
            f"Could not export to {target}: {exc.strerror or exc}"
            f"{f' ({len(written)} copied before that)' if written else ''}."
        ) from None
    message = f"Exported {plural(len(written))} with a JSON sidecar each to {target.resolve()}."
    if skipped:
        message += f" Left out {plural(len(skipped))} whose file is missing."
    return Exported(target, tuple(written), tuple(skipped), message)
