"""Contact sheets in the archive: ``sheets/<batch id>/<name>.png``, its JSON inside and beside it.

A sheet's JSON (the sweep, and for each cell the record id of its image) is kept
twice: in a ``pixery-sheet`` text chunk of the PNG, so the file carries it wherever
it is copied, and in a ``.json`` sidecar that tools read without a PNG parser. Both
are written atomically; a sheet can always be drawn again from its batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core.errors import ArchiveError
from .files import write_atomic
from .png import add_text_chunks, read_text_chunks

__all__ = [
    "SHEETS_DIR",
    "SHEET_CHUNK",
    "read_sheet",
    "save_sheet",
    "sheet_paths",
    "with_sheet_json",
]

#: The folder of the archive that holds contact sheets.
SHEETS_DIR = "sheets"
#: The PNG text chunk that holds a sheet's JSON.
SHEET_CHUNK = "pixery-sheet"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "sheet"


def with_sheet_json(
    png: bytes, meta: Mapping[str, Any], redact: Callable[[str], str] | None = None
) -> tuple[bytes, str]:
    """(the PNG carrying ``meta`` as its ``pixery-sheet`` text chunk, the JSON text)."""
    text = json.dumps(meta, ensure_ascii=True, default=str)
    if redact is not None:
        text = redact(text)
    return add_text_chunks(png, {SHEET_CHUNK: text}), text


def save_sheet(
    root: Path,
    batch_id: str,
    name: str,
    png: bytes,
    meta: Mapping[str, Any],
    *,
    redact: Callable[[str], str] | None = None,
) -> Path:
    """Write a sheet's PNG (with its JSON as a text chunk) and its JSON sidecar; the PNG's path.

    Raises ``ArchiveError`` when either cannot be written.
    """
    path = root / SHEETS_DIR / _safe(batch_id) / f"{_safe(name)}.png"
    try:
        data, text = with_sheet_json(png, meta, redact)
        write_atomic(path, data)
        write_atomic(path.with_suffix(".json"), text.encode("ascii"))
    except (OSError, ValueError) as exc:
        raise ArchiveError(
            f"Could not save the contact sheet to {path}: {getattr(exc, 'strerror', None) or exc}.",
            reason="could not save",
        ) from exc
    return path


def read_sheet(path: str | Path) -> dict[str, Any]:
    """A sheet's JSON, from its PNG's text chunk or else its sidecar."""
    path = Path(path)
    try:
        text = read_text_chunks(path.read_bytes()).get(SHEET_CHUNK) if path.is_file() else None
        if text is None:
            text = path.with_suffix(".json").read_text("ascii")
        meta = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{path} is not a readable contact sheet: {exc}.") from None
    if not isinstance(meta, dict):
        raise ArchiveError(f"{path} is not a readable contact sheet.")
    return meta


def sheet_paths(root: Path, batch_id: str | None = None) -> list[Path]:
    """The sheets archived under ``root`` (of one batch when given), oldest batch first."""
    folder = root / SHEETS_DIR
    pattern = f"{_safe(batch_id)}/*.png" if batch_id is not None else "*/*.png"
    return sorted(folder.glob(pattern)) if folder.is_dir() else []
