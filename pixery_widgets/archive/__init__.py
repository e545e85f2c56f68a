"""The archive layer: every image kept on disk the moment it arrives, and found again.

Beside the providers, above the core: it imports only ``core``. Regenerating a
record needs ``agenerate`` from the session layer above; that goes through one
seam, ``use_generator``, which the session layer calls when it is imported.
"""

from .store import Archive, ArchiveRecord, Records, get_archive, use_generator

__all__ = ["Archive", "ArchiveRecord", "Records", "get_archive", "use_generator"]
