"""Temporary files left by a process killed while saving: recovered if whole, else removed.

A save writes ``.<name>.<pid>-<n>.tmp`` beside its final name and renames it
into place. A ``kill -9`` (or a power cut) in between leaves the temporary
file: empty, cut off, or a complete PNG whose image would otherwise be lost.
When an archive is opened, and on ``reindex()``, a leftover of a process that
is no longer running (and older than ``LEFTOVER_AGE``, in case its pid was
reused or belongs to another machine's process) is renamed to its final name
and indexed when it is a whole image with its ``pixery`` JSON, and removed
otherwise. Thumbnails and reference images are only removed (a thumbnail is
made again; a reference is written again by the next save that needs it, and
the save it belonged to never reached its image).
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .png import is_whole_png
from .upkeep import index_file, read_info

if TYPE_CHECKING:
    from .store import Archive

__all__ = ["LEFTOVER_AGE", "Leftovers", "recover_leftovers"]

log = logging.getLogger(__name__)

#: Seconds a leftover must be old before it is touched (its writer may be alive elsewhere).
LEFTOVER_AGE = 10.0

_TEMP = re.compile(r"^\.(?P<final>.+)\.(?P<pid>\d+)-\d+\.tmp$")
_FOLDERS = ("images", "thumbs", "references")


@dataclass
class Leftovers:
    """What one pass found: images recovered (and indexed), files removed."""

    recovered: int = 0
    indexed: int = 0
    removed: int = 0


def _writer_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    if os.name != "posix":  # os.kill would end the process there; rely on the age alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError, OverflowError):
        return False  # it exists (another user's), or the number is not a pid here
    return False


def _candidates(root: Path, now: float) -> list[tuple[Path, str]]:
    """(leftover, its final name) of every dead writer's temporary file, oldest enough."""
    found = []
    for top in _FOLDERS:
        try:
            folders = [e.path for e in os.scandir(root / top) if e.is_dir()]
        except OSError:
            continue
        for folder in folders:
            try:
                entries = [e for e in os.scandir(folder) if e.name.endswith(".tmp")]
            except OSError:
                continue
            for entry in entries:
                match = _TEMP.match(entry.name)
                if match is None or not _writer_gone(int(match["pid"])):
                    continue
                try:
                    if now - entry.stat().st_mtime < LEFTOVER_AGE:
                        continue
                except OSError:
                    continue
                found.append((Path(entry.path), match["final"]))
    return found


def _recover_image(archive: Archive, leftover: Path, final: str, known: dict[str, str]) -> bool:
    """Rename a whole PNG with its JSON into place and index it; False if it is not one."""
    target = leftover.with_name(final)
    if not final.endswith(".png") or target.exists():
        return False
    raw = leftover.read_bytes()
    if not is_whole_png(raw) or read_info(raw) is None:
        return False
    os.replace(leftover, target)
    log.info("recovered %s, left by a process killed while saving it", target)
    return True


def recover_leftovers(archive: Archive) -> Leftovers:
    """Recover or remove every leftover of a dead writer under the archive. Raises
    ``ArchiveError`` only when indexing a recovered image fails (it stays, for reindex)."""
    result = Leftovers()
    candidates = _candidates(archive.root, time.time())
    if not candidates:
        return result
    known = {str(r[0]): str(r[1]) for r in archive._query("SELECT id, path FROM generations")}
    recovered: list[Path] = []
    for leftover, final in candidates:
        try:
            if leftover.parent.parent.name == "images" and _recover_image(
                archive, leftover, final, known
            ):
                recovered.append(leftover.with_name(final))
                continue
            leftover.unlink()
            result.removed += 1
        except OSError as exc:
            log.warning("could not clear the leftover %s: %s", leftover, exc)
    result.recovered = len(recovered)
    for path in recovered:
        try:
            result.indexed += index_file(archive, path, known)
        except OSError as exc:
            log.warning("could not index the recovered %s: %s", path, exc)
    if result.removed or result.recovered:
        log.info(
            "archive %s: %s image(s) recovered from a killed save, %s broken leftover(s) removed",
            archive.root,
            result.recovered,
            result.removed,
        )
    return result
