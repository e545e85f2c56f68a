"""One ``Archive`` object per directory for the process, shared by ``agenerate`` and batches.

Opening an archive costs a SQLite connection and a background thread, and two
objects on one directory would race their fsync rounds: so each directory is
opened once, and opened anew when its index was deleted meanwhile.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..core.config import Settings
from .store import Archive

__all__ = ["get_archive", "open_archives"]


_archives: dict[Path, Archive] = {}
#: The same, by the path as given (saves a ``resolve()`` per image).
_archives_as_given: dict[Path, Archive] = {}
_archives_lock = threading.Lock()


def get_archive(
    target: Archive | str | os.PathLike[str] | bool | None, settings: Settings
) -> Archive | None:
    """The archive ``target`` names: an Archive, a path, ``True``/``None`` for the configured one,
    ``False`` for none. Opened once per directory for the process."""
    if target is False:
        return None
    if isinstance(target, Archive):
        return target
    path = settings.archive_dir if target is None or target is True else Path(target)
    with _archives_lock:
        archive = _archives_as_given.get(path)
        if (
            archive is not None
            and _archives.get(archive.root) is archive
            and archive.db_path.exists()
        ):
            return archive
        key = path.expanduser().resolve()
        archive = _archives.get(key)
        if archive is not None and not archive.db_path.exists():  # deleted meanwhile: start anew
            archive.close()
            archive = None
        if archive is None:
            archive = Archive(key, settings=settings)
            _archives[key] = archive
        if path.is_absolute():  # a relative one depends on the working directory
            _archives_as_given[path] = archive
        return archive


def open_archives() -> list[Archive]:
    """Every archive opened so far in this process (tests flush them between cases)."""
    with _archives_lock:
        return list(_archives.values())
