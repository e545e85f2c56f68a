"""Durable file I/O: a file is either absent or whole, and fsynced for power loss later.

A file is written to a temporary name in its own folder and renamed into
place; the fsync follows in rounds on a background thread, so a fast batch
shares one folder fsync. Thumbnails are written the same way, without fsync.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..core.errors import ArchiveError
from .png import is_png

__all__ = [
    "SYNC_DELAY",
    "THUMB_SIDE",
    "GroupSync",
    "as_png",
    "read_image_file",
    "reference_ext",
    "thumbnail",
    "usable_thumbnail",
    "write_atomic",
    "write_thumbnail",
]

#: Longest side of the thumbnail files (JPEG); small enough for 50 in a notebook.
THUMB_SIDE = 160


def thumbnail(raw: bytes) -> bytes:
    """A small JPEG of ``raw``; ``ArchiveError`` when the image cannot be decoded."""
    from ..core.images import thumbnail_png

    try:
        return thumbnail_png(raw, THUMB_SIDE, fmt="JPEG")
    except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, bomb errors
        raise ArchiveError(
            f"The archived image cannot be decoded ({type(exc).__name__}: {exc}); "
            "the file may be damaged."
        ) from None


def read_image_file(path: Path) -> bytes:
    """An archived file's bytes; ``ArchiveError`` saying so when it is gone or unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ArchiveError(
            f"The image file {path} is missing (deleted by hand?); "
            "Archive().forget_missing() drops the records of missing files."
        ) from None
    except OSError as exc:
        raise ArchiveError(f"Could not read {path}: {exc.strerror or exc}.") from None


def usable_thumbnail(path: Path) -> bytes | None:
    """A kept thumbnail if it is a whole JPEG (start and end markers), else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data[:3] == b"\xff\xd8\xff" and data.rstrip(b"\0")[-2:] == b"\xff\xd9":
        return data
    return None


#: How long a sync round waits for more images to join it (a fast batch makes ~300/s here).
SYNC_DELAY = 0.05


class GroupSync:
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


def write_thumbnail(thumb: bytes, path: Path) -> None:
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


def write_atomic(
    path: Path, data: bytes | Sequence[bytes | memoryview], *, durable: bool = True
) -> None:
    """Write ``data`` (bytes, or pieces written one after the other) to ``path`` so that
    ``path`` is either absent or whole.

    A temporary file in the same directory is written (and fsynced when
    ``durable``), then renamed over ``path``; on any failure the temporary file
    is removed. Raises ``OSError``.
    """
    fd, tmp_name = _create_temp(path)
    try:
        try:
            _write_all(fd, [data] if isinstance(data, (bytes, bytearray, memoryview)) else data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if durable:
        _fsync_dir(path.parent)


#: Most pieces one ``writev`` takes (POSIX guarantees 16; Linux and macOS take 1024).
_IOV_MAX = 16


def _write_all(fd: int, parts: Sequence[bytes | bytearray | memoryview]) -> None:
    """Write every byte of ``parts`` to ``fd``, in order, without joining them first."""
    pending = [memoryview(part).cast("B") for part in parts if len(part)]
    writev = getattr(os, "writev", None)
    while pending:
        batch = pending[:_IOV_MAX]
        written = writev(fd, batch) if writev is not None else os.write(fd, batch[0])
        if not written:
            raise OSError(errno.EIO, "the file took none of the bytes written to it")
        while written:  # drop what went out; a short write leaves the rest of a piece
            if written >= len(pending[0]):
                written -= len(pending.pop(0))
            else:
                pending[0] = pending[0][written:]
                written = 0


def as_png(raw: bytes) -> bytes:
    """PNG bytes as received, or a lossless PNG of another format (fal can send JPEG)."""
    if is_png(raw):
        return raw
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as img:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()


def reference_ext(raw: bytes) -> str:
    if is_png(raw):
        return "png"
    if raw[:3] == b"\xff\xd8\xff":
        return "jpg"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "webp"
    return "img"
