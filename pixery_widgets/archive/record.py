"""A record of one archived image: its parameters, its file, and the way to make it again.

A record is a snapshot of its row: ``star()``, ``tag()``, ``trash()`` and the
others change the archive and return the record as it is now. Its request
attributes are the index's request columns (``schema.REQUEST_COLUMNS``), one
each, so a field declared in the request schema is a record attribute too.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import schema as request_schema
from ..core.catalog import ModelSpec, local_model_spec, resolve_model
from ..core.errors import ArchiveError, PixeryError, UnknownModelError
from ..core.types import Generation
from .files import read_image_file, thumbnail, usable_thumbnail, write_thumbnail
from .schema import REQUEST_COLUMNS, stored_type

if TYPE_CHECKING:
    from PIL import Image

    from .store import Archive

__all__ = ["PARENT_ID", "ArchiveRecord", "Records", "use_generator"]


#: The seam through which a record is made again. The archive sits below the
#: session layer, so it cannot import ``agenerate``; the session layer hands it
#: over with ``use_generator`` when it is imported.
Generator = Callable[..., Awaitable[Generation]]
_generator: Generator | None = None


def use_generator(generate: Generator) -> None:
    """Set the coroutine function that ``ArchiveRecord.aregenerate`` calls (``agenerate``)."""
    global _generator
    _generator = generate


#: The record being regenerated, while ``aregenerate`` runs: the archive records it as the
#: new image's parent. A context variable, so ``agenerate`` needs no parameter for it (its
#: worker threads, started with ``asyncio.to_thread``, see the value too).
PARENT_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pixery_parent_id", default=None
)


def _hint(f: request_schema.RequestField) -> str:
    name = stored_type(f).__name__
    return name if f.default is ... else f"{name} | None"


#: One attribute per request column, typed as the index holds it (None: no value, or a field
#: declared after the image was saved).
_RequestColumns = dataclasses.make_dataclass(
    "_RequestColumns",
    [(str(f.column), _hint(f)) for f in REQUEST_COLUMNS],
    frozen=True,
    repr=False,
    kw_only=True,
)


@dataclass(frozen=True, repr=False, kw_only=True)
class ArchiveRecord(_RequestColumns):  # type: ignore[misc, valid-type]
    """One archived generation: a row of the index, with its files.

    Besides these, one attribute per request column of the index (``prompt``, ``seed``,
    ``width``, ``lora``, ``reference_hash`` and the others of ``schema.REQUEST_COLUMNS``):
    what was used. ``params`` is the whole JSON the PNG carries.
    """

    id: str
    created_at: dt.datetime
    model: str
    provider: str
    elapsed_s: float | None
    cost_usd: float | None
    path: Path
    thumb_path: Path | None
    batch_id: str | None
    tags: tuple[str, ...]
    params: dict[str, Any] = field(repr=False, compare=False)
    archive: Archive | None = field(default=None, repr=False, compare=False)
    starred: bool = False
    #: When it was moved to the trash (its file stays until ``Archive.empty_trash()``).
    trashed_at: dt.datetime | None = None
    #: The record this one was regenerated from.
    parent_id: str | None = None

    @property
    def missing(self) -> bool:
        """True when the image file is gone (deleted by hand); ``forget_missing()`` drops it."""
        return not self.path.is_file()

    @property
    def trashed(self) -> bool:
        return self.trashed_at is not None

    @property
    def image(self) -> Image.Image:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(self.png_bytes())) as img:
            img.load()
            return img.copy()

    def png_bytes(self) -> bytes:
        """The archived file (the received image plus the parameter chunks)."""
        return read_image_file(self.path)

    def thumbnail_bytes(self) -> bytes:
        """The small JPEG; made from the image (and kept) the first time it is asked for,
        and made again when the kept one is damaged."""
        if self.thumb_path is not None:
            kept = usable_thumbnail(self.thumb_path)
            if kept is not None:
                return kept
        thumb = thumbnail(self.png_bytes())
        if self.thumb_path is not None:
            write_thumbnail(thumb, self.thumb_path)
        return thumb

    # -- changing it (in the archive; each returns the record as it is now) ----------------

    def _store(self) -> Archive:
        if self.archive is None:
            raise ArchiveError("This record is not attached to an archive.")
        return self.archive

    def star(self) -> ArchiveRecord:
        return self._store().star(self.id)

    def unstar(self) -> ArchiveRecord:
        return self._store().star(self.id, starred=False)

    def tag(self, *tags: str) -> ArchiveRecord:
        return self._store().tag(self.id, *tags)

    def untag(self, *tags: str) -> ArchiveRecord:
        return self._store().untag(self.id, *tags)

    def trash(self) -> ArchiveRecord:
        """Hide it from searches; the file stays until ``Archive.empty_trash()``."""
        return self._store().trash(self.id)

    def restore(self) -> ArchiveRecord:
        return self._store().trash(self.id, trashed=False)

    @property
    def parent(self) -> ArchiveRecord | None:
        """The record this one was regenerated from (None if none, or since deleted)."""
        if self.parent_id is None:
            return None
        try:
            return self._store().get(self.parent_id)
        except KeyError:
            return None

    def children(self) -> Records:
        """The records regenerated from this one, newest first (trashed ones left out)."""
        return self._store().search(parent=self.id, limit=None)

    def __repr__(self) -> str:
        short = self.prompt if len(self.prompt) <= 40 else self.prompt[:37] + "..."
        return (
            f"ArchiveRecord(id={self.id!r}, model={self.model!r}, seed={self.seed}, "
            f"prompt={short!r}, path={str(self.path)!r})"
        )

    def caption(self) -> str:
        seed = f"seed {self.seed}" if self.seed is not None else "seed n/a"
        size = f"{self.width}×{self.height}" if self.width and self.height else ""
        return " · ".join(
            p for p in (self.model, seed, size, f"{self.created_at:%Y-%m-%d %H:%M}") if p
        )

    def _model_spec(self, model: str) -> ModelSpec:
        """The model as the catalog knows it; a model it does not know (a server's own, or a
        cloud model since dropped, which ``agenerate`` will refuse in words) as one that takes
        whatever its back end takes."""
        try:
            return resolve_model(model)
        except UnknownModelError:
            return dataclasses.replace(local_model_spec(model), provider=self.provider)

    def regenerate_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``agenerate`` that replay this request.

        The request fields the model takes and the request set (``schema.applicable``,
        with the seed used), then the provider options it takes. A value an older release
        recorded and did not send, such as steps on a Gemini image, is not replayed: it
        would now be refused.
        """
        request: dict[str, Any] = dict(self.params.get("request") or {})
        model = str(request.get("model") or self.model)
        spec = self._model_spec(model)
        # ``describe()`` holds each field under its column's name (a reference as its hash).
        values = {f.name: request.get(f.column or f.name) for f in request_schema.FIELDS}
        values["prompt"] = request.get("prompt", self.prompt)
        if self.seed is not None:
            values["seed"] = self.seed
        fields = request_schema.applicable(values, spec)
        if "reference" in fields:
            if self.archive is None:
                raise ArchiveError("This record has no archive to read its reference image from.")
            fields["reference"] = self.archive.reference_images(str(fields["reference"]))
        options = request.get("extra") or {}
        return {
            "prompt": fields.pop("prompt", self.prompt),
            "model": model,
            **fields,
            **{k: v for k, v in options.items() if request_schema.takes(spec, k)},
        }

    async def aregenerate(self, **overrides: Any) -> Generation:
        """Make this image again with the same parameters (and seed); a new ``Generation``.

        ``overrides`` change single parameters (``seed=None`` for a new variation).
        The new image goes to the same archive.
        """
        if _generator is None:
            raise ArchiveError(
                "Regenerating needs pixery_widgets imported (it wires the generator)."
            )
        kwargs = {**self.regenerate_kwargs(), **overrides}
        kwargs.setdefault("archive", self.archive if self.archive is not None else True)
        prompt, model = kwargs.pop("prompt"), kwargs.pop("model")
        token = PARENT_ID.set(self.id)
        try:
            return await _generator(prompt, model, **kwargs)
        finally:
            PARENT_ID.reset(token)

    def regenerate(self, **overrides: Any) -> Generation:
        """Sync twin of ``aregenerate``."""
        from ..core.sync import run_sync

        return run_sync(self.aregenerate(**overrides))

    def _repr_html_(self) -> str:
        return Records([self])._repr_html_()


class Records(list):  # type: ignore[type-arg]
    """A list of ``ArchiveRecord`` that shows as a thumbnail grid in a notebook."""

    def _repr_html_(self) -> str:
        from ..core.grid import GridItem, grid_html

        items = []
        for rec in self:
            try:
                thumb: bytes | None = rec.thumbnail_bytes()
            except PixeryError:
                thumb = None
            items.append(
                GridItem(
                    thumb=thumb,
                    caption=rec.caption(),
                    title=rec.prompt,
                    footer=rec.id,
                    error=None if thumb is not None else "file missing",
                )
            )
        header = f"{len(self)} archived image{'s' if len(self) != 1 else ''}"
        return grid_html(items, header=header)
