"""The archive layer: every image kept on disk the moment it arrives, and found again.

Beside the providers, above the core: it imports only ``core``. Its rooms:

- ``png``: text chunks spliced into the received PNG bytes;
- ``infotext``: the AUTOMATIC1111 ``parameters`` text other tools read;
- ``metadata``: the JSON each PNG carries, and the typed values of its row;
- ``schema``: the SQLite tables (rows, tags, the FTS5 word index) and their migration;
- ``index``: the connection, its errors in words, and the SQL that finds rows;
- ``files``: atomic writes, fsync rounds, thumbnails;
- ``record``: ``ArchiveRecord`` and ``Records`` (a list that shows as a grid);
- ``finder``: searching and counting (the reading half of ``Archive``);
- ``upkeep``: reindex, empty the trash, forget missing files;
- ``leftovers``: temporary files of a process killed while saving;
- ``store``: ``Archive``, which ties them together;
- ``registry``: one ``Archive`` per directory for the process;
- ``events``: listeners told of each new or changed image (a gallery shows it at once).

Regenerating a record needs ``agenerate`` from the session layer above; that
goes through one seam, ``use_generator``, which the session layer calls when it
is imported; ``Archive.browse()`` opens the widgets' gallery through ``use_browser``.
"""

from .events import on_changed, on_saved, use_browser
from .files import write_atomic
from .infotext import a1111_parameters
from .png import add_text_chunks, read_text_chunks
from .record import ArchiveRecord, Records, use_generator
from .registry import get_archive
from .store import Archive
from .upkeep import Cleanup

__all__ = [
    "Archive",
    "ArchiveRecord",
    "Cleanup",
    "Records",
    "a1111_parameters",
    "add_text_chunks",
    "get_archive",
    "on_changed",
    "on_saved",
    "read_text_chunks",
    "use_browser",
    "use_generator",
    "write_atomic",
]
