"""A record of one archived image: its parameters, its file, and the way to make it again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import ArchiveError
from ..core.types import Generation
from .files import thumbnail, write_thumbnail

if TYPE_CHECKING:
    from PIL import Image

    from .store import Archive

__all__ = ["ArchiveRecord", "Records", "use_generator"]


#: The seam through which a record is made again. The archive sits below the
#: session layer, so it cannot import ``agenerate``; the session layer hands it
#: over with ``use_generator`` when it is imported.
Generator = Callable[..., Awaitable[Generation]]
_generator: Generator | None = None


def use_generator(generate: Generator) -> None:
    """Set the coroutine function that ``ArchiveRecord.aregenerate`` calls (``agenerate``)."""
    global _generator
    _generator = generate


@dataclass(frozen=True, repr=False)
class ArchiveRecord:
    """One archived generation: a row of the index, with its files."""

    id: str
    created_at: dt.datetime
    prompt: str
    negative_prompt: str | None
    model: str
    provider: str
    seed: int | None
    width: int | None
    height: int | None
    steps: int | None
    cfg_scale: float | None
    lora: str | None
    lora_scale: float | None
    reference_hash: str | None
    elapsed_s: float | None
    cost_usd: float | None
    path: Path
    thumb_path: Path | None
    batch_id: str | None
    tags: tuple[str, ...]
    params: dict[str, Any] = field(repr=False, compare=False)
    archive: Archive | None = field(default=None, repr=False, compare=False)

    @property
    def image(self) -> Image.Image:
        from PIL import Image

        with Image.open(self.path) as img:
            img.load()
            return img.copy()

    def png_bytes(self) -> bytes:
        """The archived file (the received image plus the parameter chunks)."""
        return self.path.read_bytes()

    def thumbnail_bytes(self) -> bytes:
        """The small JPEG; made from the image (and kept) the first time it is asked for."""
        if self.thumb_path is not None and self.thumb_path.is_file():
            return self.thumb_path.read_bytes()
        thumb = thumbnail(self.path.read_bytes())
        if self.thumb_path is not None:
            write_thumbnail(thumb, self.thumb_path)
        return thumb

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

    def regenerate_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``agenerate`` that replay this request."""
        request: dict[str, Any] = dict(self.params.get("request") or {})
        kwargs: dict[str, Any] = {
            "prompt": request.get("prompt", self.prompt),
            "model": request.get("model", self.model),
            "negative_prompt": request.get("negative_prompt"),
            "seed": self.seed if self.seed is not None else request.get("seed"),
        }
        for key in ("width", "height", "steps", "cfg_scale", "lora"):
            if request.get(key) is not None:
                kwargs[key] = request[key]
        if request.get("lora") and request.get("lora_scale") is not None:
            kwargs["lora_scale"] = request["lora_scale"]
        if request.get("reference_hash"):
            if self.archive is None:
                raise ArchiveError("This record has no archive to read its reference image from.")
            kwargs["reference"] = self.archive.reference_images(request["reference_hash"])
            if request.get("ip_adapter_scale") is not None:
                kwargs["ip_adapter_scale"] = request["ip_adapter_scale"]
        kwargs.update(request.get("extra") or {})
        return kwargs

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
        return await _generator(prompt, model, **kwargs)

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
            except OSError:
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
