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
import contextlib
import datetime as dt
import errno
import io
import itertools
import json
import os
import re
import secrets
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import Settings, load_settings
from ..core.errors import ArchiveError
from ..core.types import DEFAULT_LORA_SCALE, Generation

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "Archive",
    "ArchiveRecord",
    "Records",
    "a1111_parameters",
    "add_text_chunks",
    "get_archive",
    "read_text_chunks",
]

#: Longest side of the thumbnail files (JPEG); small enough for 50 in a notebook.
THUMB_SIDE = 160
_SCHEMA_VERSION = 1

# -- PNG text chunks, written into the byte stream ---------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_TYPES = (b"tEXt", b"iTXt", b"zTXt")


def is_png(data: bytes) -> bool:
    return data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk, ``end`` past its CRC; stops at IEND or damage."""
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _text_chunk(key: str, value: str) -> bytes:
    """tEXt when the value is Latin-1 (what most readers expect), else uncompressed iTXt."""
    keyword = key.encode("latin-1")
    try:
        return _chunk(b"tEXt", keyword + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", keyword + b"\0\0\0\0\0" + value.encode("utf-8"))


def add_text_chunks(png: bytes, texts: Mapping[str, str]) -> bytes:
    """``png`` with ``texts`` as text chunks right after IHDR; the image data is untouched.

    Text chunks already there with the same keywords are dropped so readers see
    one value. Raises ``ValueError`` when ``png`` is not a whole PNG.
    """
    if not is_png(png):
        raise ValueError("not a PNG")
    parts: list[bytes] = [PNG_SIGNATURE]
    saw_iend = False
    for kind, start, end in _png_chunks(png):
        if kind in _TEXT_TYPES:
            keyword = png[start + 8 : end - 4].split(b"\0", 1)[0].decode("latin-1")
            if keyword in texts:
                continue
        parts.append(png[start:end])
        if kind == b"IHDR":
            parts.extend(_text_chunk(k, v) for k, v in texts.items())
        saw_iend = saw_iend or kind == b"IEND"
    if not saw_iend:
        raise ValueError("truncated PNG")
    return b"".join(parts)


def read_text_chunks(png: bytes) -> dict[str, str]:
    """Every tEXt, zTXt and iTXt chunk of ``png`` as keyword → text (later ones win)."""
    out: dict[str, str] = {}
    if not is_png(png):
        return out
    for kind, start, end in _png_chunks(png):
        if kind not in _TEXT_TYPES:
            continue
        key, _, rest = png[start + 8 : end - 4].partition(b"\0")
        try:
            if kind == b"tEXt":
                value = rest.decode("latin-1")
            elif kind == b"zTXt":
                value = zlib.decompress(rest[1:]).decode("latin-1")
            else:
                compressed = rest[0]
                _lang, _, rest = rest[2:].partition(b"\0")
                _translated, _, text = rest.partition(b"\0")
                value = (zlib.decompress(text) if compressed else text).decode("utf-8")
        except (zlib.error, UnicodeDecodeError, IndexError):
            continue
        out[key.decode("latin-1")] = value
    return out


# -- what goes into the file -------------------------------------------------------------


def _a1111_quote(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:\n"') else text


def _fmt_number(value: float) -> str:
    return f"{value:g}"


def a1111_parameters(info: Mapping[str, Any]) -> str:
    """The ``parameters`` text A1111, ComfyUI and Civitai read:

    ``prompt\\nNegative prompt: …\\nSteps: 28, CFG scale: 5, Seed: 7, Size: 1024x1024, Model: …``
    """
    lines = [str(info.get("prompt") or "")]
    if info.get("negative_prompt"):
        lines.append(f"Negative prompt: {info['negative_prompt']}")
    fields: list[tuple[str, object]] = []
    if info.get("steps") is not None:
        fields.append(("Steps", info["steps"]))
    if info.get("sampler"):
        fields.append(("Sampler", info["sampler"]))
    if info.get("cfg_scale") is not None:
        fields.append(("CFG scale", _fmt_number(float(info["cfg_scale"]))))
    if info.get("seed") is not None:
        fields.append(("Seed", info["seed"]))
    if info.get("width") and info.get("height"):
        fields.append(("Size", f"{info['width']}x{info['height']}"))
    fields.append(("Model", info.get("model") or ""))
    if info.get("lora"):
        scale = info.get("lora_scale")
        scale = DEFAULT_LORA_SCALE if scale is None else scale  # 0.0 is a real choice
        fields.append(("Lora", f"{info['lora']}:{_fmt_number(float(scale))}"))
    if info.get("reference_hash"):
        fields.append(("IP-Adapter reference", info["reference_hash"]))
    if info.get("provider") and info.get("provider") != "selfhosted":
        fields.append(("Provider", info["provider"]))
    fields.append(("Version", "pixery-widgets"))
    lines.append(", ".join(f"{k}: {_a1111_quote(v)}" for k, v in fields))
    return "\n".join(lines)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(text: str) -> str:
    return _SLUG.sub("-", text).strip("-")[:40] or "image"


def _effective(generation: Generation, request: Mapping[str, Any], key: str) -> Any:
    """What the back end says it used (server defaults filled in), else what was asked."""
    value = generation.params.get(key) if isinstance(generation.params, dict) else None
    return value if value is not None else request.get(key)


def generation_info(
    generation: Generation, *, gen_id: str, created_at: dt.datetime, batch_id: str | None
) -> dict[str, Any]:
    """Everything the archive records about one image, as JSON-able values.

    ``request`` is exactly what was asked (with the seed the back end used),
    so regenerating replays it; the top-level fields are what was used.
    """
    if generation.request is not None:
        request = generation.request.describe()
    else:
        request = {k: v for k, v in generation.params.items() if isinstance(k, str)}
        request.setdefault("model", generation.model)
        request.setdefault("provider", generation.provider)
    request["seed"] = generation.seed if generation.seed is not None else request.get("seed")
    info: dict[str, Any] = {
        "id": gen_id,
        "created_at": created_at.isoformat(),
        "prompt": request.get("prompt") or generation.prompt,
        "negative_prompt": _effective(generation, request, "negative_prompt"),
        "model": generation.model,
        "provider": generation.provider,
        "seed": generation.seed,
        "width": _effective(generation, request, "width"),
        "height": _effective(generation, request, "height"),
        "steps": _effective(generation, request, "steps"),
        "cfg_scale": _effective(generation, request, "cfg_scale"),
        "sampler": generation.params.get("sampler") if generation.params else None,
        "lora": request.get("lora"),
        "lora_scale": request.get("lora_scale") if request.get("lora") else None,
        "reference_hash": request.get("reference_hash"),
        "elapsed_s": round(generation.elapsed_s, 3),
        "cost_usd": generation.cost_usd,
        "batch_id": batch_id,
        "request": request,
        "server_parameters": generation.params,
        "format": 1,
    }
    return info


# -- records -------------------------------------------------------------------------------

_COLUMNS = (
    "id",
    "created_at",
    "prompt",
    "negative_prompt",
    "model",
    "provider",
    "seed",
    "width",
    "height",
    "steps",
    "cfg_scale",
    "lora",
    "lora_scale",
    "reference_hash",
    "elapsed_s",
    "cost_usd",
    "path",
    "thumb_path",
    "batch_id",
    "tags",
    "params_json",
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS generations (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    prompt TEXT NOT NULL,
    negative_prompt TEXT,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    seed INTEGER,
    width INTEGER,
    height INTEGER,
    steps INTEGER,
    cfg_scale REAL,
    lora TEXT,
    lora_scale REAL,
    reference_hash TEXT,
    elapsed_s REAL,
    cost_usd REAL,
    path TEXT NOT NULL,
    thumb_path TEXT,
    batch_id TEXT,
    tags TEXT NOT NULL DEFAULT '',
    params_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_created_at ON generations (created_at);
CREATE INDEX IF NOT EXISTS generations_batch_id ON generations (batch_id);
CREATE INDEX IF NOT EXISTS generations_model ON generations (model);
PRAGMA user_version = {_SCHEMA_VERSION};
"""


def _num(info: Mapping[str, Any], key: str, kind: type) -> Any:
    value = info.get(key)
    try:
        return kind(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _fields_from_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """The typed column values of a record, from the JSON the PNG carries."""
    return {
        "id": str(info["id"]),
        "prompt": str(info.get("prompt") or ""),
        "negative_prompt": info.get("negative_prompt"),
        "model": str(info.get("model") or ""),
        "provider": str(info.get("provider") or ""),
        "seed": _num(info, "seed", int),
        "width": _num(info, "width", int),
        "height": _num(info, "height", int),
        "steps": _num(info, "steps", int),
        "cfg_scale": _num(info, "cfg_scale", float),
        "lora": info.get("lora"),
        "lora_scale": _num(info, "lora_scale", float),
        "reference_hash": info.get("reference_hash"),
        "elapsed_s": _num(info, "elapsed_s", float),
        "cost_usd": _num(info, "cost_usd", float),
        "batch_id": info.get("batch_id"),
    }


def _row_from_fields(
    fields: Mapping[str, Any],
    created_at: str,
    path: str,
    thumb_path: str | None,
    tags: str,
    params_json: str,
) -> tuple[Any, ...]:
    """One index row in ``_COLUMNS`` order (paths relative to the archive root)."""
    values = {
        **fields,
        "created_at": created_at,
        "path": path,
        "thumb_path": thumb_path,
        "tags": tags,
        "params_json": params_json,
    }
    return tuple(values[c] for c in _COLUMNS)


_INSERT = (
    f"INSERT INTO generations ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)
_INSERT_OR_IGNORE = _INSERT.replace("INSERT", "INSERT OR IGNORE", 1)


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
        thumb = _thumbnail(self.path.read_bytes())
        if self.thumb_path is not None:
            _write_thumbnail(thumb, self.thumb_path)
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


# -- files ----------------------------------------------------------------------------------


def _thumbnail(raw: bytes) -> bytes:
    from ..core.images import thumbnail_png

    return thumbnail_png(raw, THUMB_SIDE, fmt="JPEG")


#: How long a sync round waits for more images to join it (a fast batch makes ~300/s here).
SYNC_DELAY = 0.05


class _GroupSync:
    """fsyncs (for power loss) of files already in place, in rounds on a background thread.

    A round starts ``SYNC_DELAY`` after the first image that needs it, takes every file
    that arrived meanwhile, fsyncs each, then each of their folders once. In a fast batch
    one folder fsync (which competes with the next image being written into that folder)
    and one wake-up of this thread serve many images instead of one; an image alone is
    synced 50 ms later than it could be (the OS alone may take 30 s).
    """

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self._pending: list[Path] = []

    def add(self, path: Path) -> None:
        with self._lock:
            self._pending.append(path)
            if len(self._pending) > 1:  # a round is already queued and will take it
                return
        self._executor.submit(self._round)

    def _round(self) -> None:
        time.sleep(SYNC_DELAY)
        with self._lock:
            paths, self._pending = self._pending, []
        for path in paths:
            _fsync_path(path)
        for folder in {path.parent for path in paths}:
            _fsync_dir(folder)


def _write_thumbnail(thumb: bytes, path: Path) -> None:
    with contextlib.suppress(OSError):  # a thumbnail can always be made again
        write_atomic(path, thumb, durable=False)


def _fsync_path(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_dir(directory: Path) -> None:
    if os.name == "posix":  # directories cannot be opened for fsync elsewhere
        _fsync_path(directory)


_TEMP_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NOINHERIT", 0)
)
_temp_serial = itertools.count()


def _create_temp(path: Path) -> tuple[int, str]:
    """A new private file ``.<name>.<pid>-<n>.tmp`` beside ``path``, creating the folder if needed.

    Cheaper than ``tempfile.mkstemp`` (no random name, no folder check when it
    exists); ``O_EXCL`` still refuses a name left over by another process.
    """
    folder = str(path.parent)
    for attempt in range(100):
        tmp_name = os.path.join(folder, f".{path.name}.{os.getpid()}-{next(_temp_serial)}.tmp")
        try:
            return os.open(tmp_name, _TEMP_FLAGS, 0o600), tmp_name
        except FileExistsError:
            continue
        except FileNotFoundError:
            if attempt:
                raise
            path.parent.mkdir(parents=True, exist_ok=True)
    raise FileExistsError(errno.EEXIST, "no free temporary file name", folder)


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent or whole.

    A temporary file in the same directory is written (and fsynced when
    ``durable``), then renamed over ``path``; on any failure the temporary file
    is removed. Raises ``OSError``.
    """
    fd, tmp_name = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if durable:
        _fsync_dir(path.parent)


def _as_png(raw: bytes) -> bytes:
    """PNG bytes as received, or a lossless PNG of another format (fal can send JPEG)."""
    if is_png(raw):
        return raw
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as img:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()


def _reference_ext(raw: bytes) -> str:
    if is_png(raw):
        return "png"
    if raw[:3] == b"\xff\xd8\xff":
        return "jpg"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "webp"
    return "img"


# -- the archive ------------------------------------------------------------------------------


def _to_iso(value: dt.datetime | dt.date | str | float | int) -> str:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).isoformat()
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()  # naive means local time
        return value.astimezone(dt.timezone.utc).isoformat()
    return dt.datetime(value.year, value.month, value.day).astimezone().isoformat()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
        self._durable = _GroupSync(self._background)
        self.db_path = self.root / "index.sqlite"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.db_path, check_same_thread=False, timeout=10.0)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
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
        now = _utcnow()
        gen_id = _new_id(now)
        info = generation_info(generation, gen_id=gen_id, created_at=now, batch_id=batch_id)
        day = f"{now:%Y-%m-%d}"
        seed = f"_s{generation.seed}" if generation.seed is not None else ""
        rel_path = os.path.join("images", day, f"{gen_id}_{_slug(generation.model)}{seed}.png")
        rel_thumb = os.path.join("thumbs", day, f"{gen_id}.jpg")
        final = self.root / rel_path
        try:
            pixery_json = self._scrub(json.dumps(info, ensure_ascii=True, default=str))
            texts = {"parameters": self._scrub(a1111_parameters(info)), "pixery": pixery_json}
            png = add_text_chunks(_as_png(generation.png_bytes), texts)
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
        fields = _fields_from_info(info)
        row = _row_from_fields(
            fields, info["created_at"], rel_path, rel_thumb, _tags_text(tags), pixery_json
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
        thumb = await asyncio.to_thread(_thumbnail, png)
        if record.thumb_path is not None:
            self._background.submit(_write_thumbnail, thumb, record.thumb_path)
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
            target = folder / f"{n}.{_reference_ext(raw)}"
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
        """Add one index row (``_row_from_fields``); False when ``ignore`` and it is there."""
        with self._lock, self._conn:
            cursor = self._conn.execute(_INSERT_OR_IGNORE if ignore else _INSERT, row)
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
            **_fields_from_info(info),
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
                "UPDATE generations SET tags = ? WHERE id = ?", (_tags_text(merged), rec.id)
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
            row = _row_from_fields(
                _fields_from_info(info), info["created_at"], rel_path, rel_thumb, "", text or "{}"
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
                for k in _COLUMNS
                if k not in ("params_json", "created_at", "path", "thumb_path", "tags")
            },
            created_at=dt.datetime.fromisoformat(info["created_at"]),
            path=self.root / info["path"],
            thumb_path=self.root / thumb if thumb else None,
            tags=_tags_tuple(info["tags"]),
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
            args += [f"%{_like_escape(text)}%"] * 2
        if model:
            where.append("model = ?")
            args.append(model)
        if tag:
            where.append("tags LIKE ? ESCAPE '\\'")
            args.append(f"%,{_like_escape(tag.strip())},%")
        if since is not None:
            where.append("created_at >= ?")
            args.append(_to_iso(since))
        if until is not None:
            where.append("created_at < ?")
            args.append(_to_iso(until))
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


def _tags_text(tags: Iterable[str]) -> str:
    cleaned = [t.replace(",", " ").strip() for t in tags if t and t.strip()]
    return f",{','.join(cleaned)}," if cleaned else ""


def _tags_tuple(text: str | None) -> tuple[str, ...]:
    return tuple(t for t in (text or "").split(",") if t)


# -- one Archive object per directory, shared by agenerate and batches ----------------------

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
