"""What the gallery shows of a record, as plain values: its card, its details, its parameters.

The same details everywhere (the gallery, the panel's strip, a batch's gallery)
come from ``detail_view``; compare's "parameters that differ" from
``compare_view``; remix's form values from ``remix_values``. Every image
travels as a small JPEG data URL (never the full PNG), so a saved notebook
stays light. Bad files never raise here: a missing or damaged image becomes
words on its card.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..archive import Archive, ArchiveRecord, a1111_parameters, get_archive
from ..archive.registry import open_archives
from ..core import schema
from ..core.config import Settings
from ..core.errors import PixeryError
from ..core.images import data_url, thumbnail_png
from ..core.types import Generation

__all__ = [
    "DETAIL_SIDE",
    "Remix",
    "card",
    "compare_view",
    "detail_view",
    "parameter_rows",
    "record_for",
    "remix_values",
    "thumb_url",
]

log = logging.getLogger(__name__)

#: Longest side of the large image of the details view (a JPEG in the widget state).
DETAIL_SIDE = 768
#: Longest side of a compared image.
COMPARE_SIDE = 512
#: Longest side of a reference's, a parent's or a child's thumbnail in the details.
SMALL_SIDE = 96
#: Children listed in the details (the newest).
MAX_CHILDREN = 12


def _local_time(when: dt.datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def thumb_url(record: ArchiveRecord) -> tuple[str, str]:
    """(the thumbnail as a data URL, "") or ("", the problem in words).

    A damaged kept thumbnail is made again from the image (by the record)."""
    if record.missing:
        return "", "file missing"
    try:
        return data_url(record.thumbnail_bytes()), ""
    except PixeryError as exc:
        log.info("no thumbnail for %s: %s", record.id, exc)
        return "", "cannot be read"


def card(record: ArchiveRecord, *, thumb: bool = True) -> dict[str, Any]:
    """One cell of the grid, as the front end draws it."""
    url, problem = thumb_url(record) if thumb else ("", "")
    return {
        "id": record.id,
        "thumb": url,
        "problem": problem or ("file missing" if not thumb and record.missing else ""),
        "caption": record.caption(),
        "short": " · ".join(
            [record.model, f"seed {record.seed}" if record.seed is not None else "random seed"]
        ),
        "prompt": record.prompt,
        "starred": record.starred,
        "trashed": record.trashed,
        "tags": list(record.tags),
    }


def _request(record: ArchiveRecord) -> dict[str, Any]:
    request = record.params.get("request") if isinstance(record.params, dict) else None
    return request if isinstance(request, dict) else {}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parameter_rows(record: ArchiveRecord) -> list[tuple[str, str]]:
    """Every parameter of the record, labelled, in reading order (empty ones left out)."""
    request = _request(record)
    params = record.params if isinstance(record.params, dict) else {}
    server = params.get("server_parameters")
    sampler = params.get("sampler") or (server.get("sampler") if isinstance(server, dict) else None)
    size = f"{record.width}×{record.height}" if record.width and record.height else None
    rows: list[tuple[str, Any]] = [
        ("Prompt", record.prompt),
        ("Negative prompt", record.negative_prompt),
        ("Model", record.model),
        ("Provider", record.provider),
        ("Seed", record.seed),
        ("Size", size),
        ("Steps", record.steps),
        ("CFG scale", record.cfg_scale),
        ("Sampler", sampler),
        ("LoRA", record.lora),
        ("LoRA scale", record.lora_scale if record.lora else None),
        ("Reference", record.reference_hash),
        ("IP-Adapter scale", request.get("ip_adapter_scale") if record.reference_hash else None),
        ("Time taken", f"{record.elapsed_s:.1f} s" if record.elapsed_s is not None else None),
        ("Cost", f"${record.cost_usd:.3f}" if record.cost_usd is not None else None),
        ("Made", _local_time(record.created_at)),
        ("Batch", record.batch_id),
        ("Tags", ", ".join(record.tags) if record.tags else None),
        ("Starred", "yes" if record.starred else None),
        ("In the trash since", _local_time(record.trashed_at) if record.trashed_at else None),
        ("Id", record.id),
    ]
    extra = request.get("extra")
    if isinstance(extra, dict):
        rows += [(str(k), v) for k, v in extra.items()]
    return [(label, _number(value)) for label, value in rows if value not in (None, "")]


def _small(record: ArchiveRecord) -> dict[str, Any]:
    url, problem = thumb_url(record)
    return {"id": record.id, "thumb": url, "problem": problem, "caption": record.caption()}


def _image(record: ArchiveRecord, side: int) -> tuple[str, str]:
    """The record's image at display size as a JPEG data URL, or "" and why not."""
    if record.missing:
        return "", (
            f"The image file {record.path} is missing (deleted by hand?). "
            "Its record can be dropped from the index."
        )
    try:
        return data_url(thumbnail_png(record.png_bytes(), side, fmt="JPEG")), ""
    except PixeryError as exc:
        return "", exc.message
    except Exception as exc:  # PIL: damaged file
        return "", f"The image file {record.path} cannot be decoded ({type(exc).__name__})."


def _references(record: ArchiveRecord) -> list[str]:
    if not record.reference_hash or record.archive is None:
        return []
    try:
        images = record.archive.reference_images(record.reference_hash)
    except PixeryError:
        return []
    out = []
    for raw in images:
        try:
            out.append(data_url(thumbnail_png(raw, SMALL_SIDE, fmt="JPEG")))
        except Exception:  # a damaged reference file: left out, the others shown
            log.info("reference of %s cannot be decoded", record.id)
    return out


def detail_view(record: ArchiveRecord) -> dict[str, Any]:
    """The details view of one record: the image large, every parameter, the A1111 text,
    where the file is, its references, its parent and children."""
    image, problem = _image(record, DETAIL_SIDE)
    parent = record.parent if record.archive is not None else None
    try:
        children = list(record.children()[:MAX_CHILDREN]) if record.archive is not None else []
    except PixeryError:
        children = []
    return {
        "id": record.id,
        "image": image,
        "problem": problem,
        "missing": record.missing,
        "caption": record.caption(),
        "prompt": record.prompt,
        "rows": [list(row) for row in parameter_rows(record)],
        "a1111": a1111_parameters(record.params or {}),
        "path": str(record.path),
        "starred": record.starred,
        "trashed": record.trashed,
        "tags": list(record.tags),
        "batch": record.batch_id or "",
        "references": _references(record),
        "parent": _small(parent) if parent is not None else None,
        "children": [_small(child) for child in children],
    }


#: Rows that always differ (or say nothing about how an image was made): not compared.
_NOT_COMPARED = {"Id", "Made", "Time taken", "Cost", "Starred", "In the trash since", "Batch"}


def compare_view(records: Sequence[ArchiveRecord]) -> dict[str, Any]:
    """2 to 4 records side by side: each image, and every parameter with those that
    differ marked (``differs``), those first."""
    tables = [dict(parameter_rows(r)) for r in records]
    labels: list[str] = []
    for table in tables:
        labels += [label for label in table if label not in labels and label not in _NOT_COMPARED]
    rows = []
    for label in labels:
        values = [table.get(label, "") for table in tables]
        rows.append({"label": label, "values": values, "differs": len(set(values)) > 1})
    rows.sort(key=lambda row: not row["differs"])  # stable: reading order within each group
    items = []
    for record in records:
        image, problem = _image(record, COMPARE_SIDE)
        items.append({"id": record.id, "image": image, "problem": problem,
                      "caption": record.caption()})  # fmt: skip
    return {"items": items, "rows": rows}


@dataclass(frozen=True)
class Remix:
    """A record's settings as the panel's form takes them; ``notes`` says what did not carry.

    The attributes are the request fields' (``core.schema``), so ``fields()`` is derived."""

    prompt: str
    negative_prompt: str
    model: str
    width: int | None
    height: int | None
    seed: int | None
    steps: int | None
    cfg_scale: float | None
    lora: str | None
    lora_scale: float | None
    references: tuple[bytes, ...]
    ip_adapter_scale: float | None
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int] | None:
        return (self.width, self.height) if self.width and self.height else None

    def fields(self) -> dict[str, Any]:
        """The values by request field name, as the panel's form loads them."""
        return {f.name: getattr(self, f.attribute) for f in schema.FIELDS}


def remix_values(record: ArchiveRecord) -> Remix:
    """What ``panel.remix(record)`` loads: prompt, negative prompt, model, size, seed,
    steps, CFG, LoRA and scale, references."""
    request = _request(record)
    notes: list[str] = []
    references: tuple[bytes, ...] = ()
    if record.reference_hash and record.archive is not None:
        try:
            references = tuple(record.archive.reference_images(record.reference_hash))
        except PixeryError as exc:
            notes.append(exc.message)
    return Remix(
        prompt=record.prompt,
        negative_prompt=record.negative_prompt or "",
        model=record.model,
        width=record.width,
        height=record.height,
        seed=record.seed,
        steps=record.steps,
        cfg_scale=record.cfg_scale,
        lora=record.lora,
        lora_scale=record.lora_scale,
        references=references,
        ip_adapter_scale=request.get("ip_adapter_scale"),
        notes=tuple(notes),
    )


def record_for(generation: Generation, settings: Settings | None = None) -> ArchiveRecord | None:
    """The archived record of ``generation`` (``None`` until it is archived, or if it is not)."""
    if generation.id is None or generation.path is None:
        return None
    path = Path(generation.path)
    archives: list[Archive] = [a for a in open_archives() if path.is_relative_to(a.root)]
    if not archives and settings is not None:
        try:
            found = get_archive(True, settings)
        except PixeryError:
            found = None
        if found is not None and path.is_relative_to(found.root):
            archives.append(found)
    for archive in archives:
        try:
            return archive.get(generation.id)
        except (KeyError, PixeryError):
            continue
    return None
