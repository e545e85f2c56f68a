"""Where each image goes on a contact sheet: the axes picked for x, y and pages, and the
job (and its state) in every cell. Pure: it reads a batch's sweep and results only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.errors import InvalidRequestError
from ..core.types import Generation
from .sweep import Axis, Sweep

if TYPE_CHECKING:
    from .batch import Batch

__all__ = ["Cell", "SheetPlan", "cell_of", "picture_of", "plan_sheet"]


@dataclass(frozen=True)
class Cell:
    """One cell of a sheet: which job it shows, and its image's record id when archived.

    ``status``: "ok", "not archived" (arrived, not saved), "failed", "cancelled", "pending".
    """

    col: int
    row: int
    job: int
    status: str
    record_id: str | None = None
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class SheetPlan:
    """Which axis goes where, and which job sits in each cell of each page."""

    x: Axis | None
    y: Axis | None
    pages: tuple[Axis, ...]
    grids: tuple[tuple[tuple[int, ...], ...], ...]  # per page, per row: job index per column
    page_values: tuple[tuple[int, ...], ...]

    @property
    def cols(self) -> int:
        return len(self.x) if self.x is not None else 1

    @property
    def rows(self) -> int:
        return len(self.y) if self.y is not None else 1

    def page_title(self, k: int) -> str:
        return "  ·  ".join(
            a.title(i) for a, i in zip(self.pages, self.page_values[k], strict=True)
        )

    def page_stem(self, k: int) -> str:
        names = [a.name if a is not None else "none" for a in (self.x, self.y)]
        return "-".join(names) + (f"-p{k + 1}" if len(self.grids) > 1 else "")


def _pick(sweep: Sweep, x: str | None, y: str | None, z: str | None) -> list[Axis | None]:
    """[x, y, *page axes]: those named, the others that vary filling x, y, then more pages."""
    named = [sweep.axis(n) if n is not None else None for n in (x, y, z)]
    names = [a.name for a in named if a is not None]
    if len(set(names)) != len(names):
        raise InvalidRequestError(f"An axis can be on one side of a sheet only, got {names}.")
    free: list[Axis | None] = [a for a in sweep.varied if a.name not in names]
    xa = named[0] if x is not None else (free.pop(0) if free else None)
    ya = named[1] if y is not None else (free.pop(0) if free else None)
    return [xa, ya, *(a for a in named[2:] if a is not None), *free]


def plan_sheet(sweep: Sweep, x: str | None, y: str | None, z: str | None) -> SheetPlan:
    picked = _pick(sweep, x, y, z)
    xa, ya, pages = picked[0], picked[1], tuple(a for a in picked[2:] if a is not None)
    shown = [a for a in (xa, ya, *pages) if a is not None]
    where = [sweep.position(a.name) for a in shown]
    jobs = {tuple(j.coords[p] for p in where): j.index for j in sweep.jobs}
    grids, values = [], []
    for page in itertools.product(*(range(len(a)) for a in pages)):
        rows = []
        for r in range(len(ya) if ya is not None else 1):
            row = []
            for c in range(len(xa) if xa is not None else 1):
                key = (*((c,) if xa else ()), *((r,) if ya else ()), *page)
                row.append(jobs[key])
            rows.append(tuple(row))
        grids.append(tuple(rows))
        values.append(tuple(page))
    return SheetPlan(xa, ya, pages, tuple(grids), tuple(values))


def cell_of(batch: Batch, col: int, row: int, index: int) -> Cell:
    result = batch.results[index]
    if isinstance(result, Generation):
        archived = batch.archive is None or result.id is not None
        status = "ok" if archived else "not archived"
        return Cell(col, row, index, status, result.id)
    if result is None:
        return Cell(col, row, index, "pending")
    if result.generation is not None:
        return Cell(col, row, index, "not archived", reason=result.reason)
    status = "cancelled" if result.reason == "cancelled" else "failed"
    return Cell(col, row, index, status, reason=result.reason, message=result.error.message)


def picture_of(batch: Batch, index: int) -> Generation | None:
    result = batch.results[index]
    if isinstance(result, Generation):
        return result
    return getattr(result, "generation", None)
