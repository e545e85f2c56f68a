"""The gallery at 100,000 images: its first page, and a text search, against bare queries.

The benchmark builds its own archive: 100,000 rows inserted in one transaction
through the archive's own index (its ``INSERT``, then its word index caught up), the
prompts drawn from a small vocabulary so words range from rare to common,
one record in ten tagged, a few models and LoRAs. Every row points at one of
``FILES`` real tiny PNGs and thumbnails (200 files serve 100,000 rows: a row's
file only has to exist to be shown, and 100,000 files would take longer to
write than everything measured here).

Measured, each a median of repetitions:

- **first page**: ``px.Gallery(archive)`` made: the newest page of 60 cards with
  their thumbnails, the count of matches and the filter menus (models, LoRAs,
  tags with counts). Baseline: the bare ``SELECT … ORDER BY created_at DESC
  LIMIT 60`` on its own connection to the same database. Target: < 150 ms.
- **text search**: ``gallery.command("search", query=…)`` for a word in every other
  prompt, a common word (one prompt in ten has it) and a rare one: the page, its thumbnails and the count.
  Baseline: the bare FTS5 ``MATCH`` of the word, ``LIMIT 60``. Target: < 50 ms.

The ratio against the bare query is in each row's note (the bound is what a
user feels; the ratio says what the gallery adds on top of SQLite itself).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import sqlite3
import tempfile
from pathlib import Path

from ._harness import Result, median, times

ROWS = 100_000
QUICK_ROWS = 20_000
FILES = 200
PAGE = 60
FIRST_PAGE_MS = 150.0
SEARCH_MS = 50.0

_WORDS = [
    "lighthouse",
    "dusk",
    "harbour",
    "fox",
    "garden",
    "rain",
    "neon",
    "city",
    "forest",
    "castle",
    "knight",
    "dragon",
    "cat",
    "window",
    "river",
    "mountain",
    "snow",
    "desert",
    "ocean",
    "portrait",
    "street",
    "market",
    "train",
    "bridge",
    "tower",
    "lantern",
    "festival",
    "moon",
    "star",
    "cloud",
    "storm",
    "meadow",
    "library",
    "kitchen",
    "robot",
    "ship",
    "island",
]
#: The baselines: the bare queries on their own connection to the same database.
BARE_PAGE = "SELECT * FROM generations ORDER BY created_at DESC LIMIT ?"
BARE_WORDS = "SELECT rowid FROM generations_fts WHERE generations_fts MATCH ? LIMIT ?"

_HALF = "solo"  # in every other prompt
_COMMON = "1girl"  # in one prompt in ten
_RARE = "zeppelin"  # in one prompt in a thousand


def _files(root: Path) -> list[tuple[str, str]]:
    """``FILES`` tiny PNGs and their thumbnails; (image, thumbnail) paths, relative."""
    from PIL import Image

    from pixery_widgets.archive.files import thumbnail

    out = []
    for n in range(FILES):
        img = Image.new("RGB", (64, 64), (n % 256, (n * 7) % 256, (n * 13) % 256))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        image, thumb = f"images/bench/{n:04d}.png", f"thumbs/bench/{n:04d}.jpg"
        for rel, data in ((image, buf.getvalue()), (thumb, thumbnail(buf.getvalue()))):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        out.append((image, thumb))
    return out


def _prompt(rng: random.Random, i: int) -> str:
    words = rng.sample(_WORDS, 6)
    if i % 10 == 0:
        words.insert(0, _COMMON)
    if i % 2 == 1:
        words.append(_HALF)
    if i % 1000 == 7:
        words.append(_RARE)
    return ", ".join(words)


def build(root: Path, rows: int) -> Path:
    """An archive of ``rows`` records at ``root``, written through its own index."""
    from pixery_widgets.archive import Archive
    from pixery_widgets.archive.index import INSERT, row_from_fields
    from pixery_widgets.core.config import Settings

    rng = random.Random(7)
    files = _files(root)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    archive = Archive(root, settings=Settings())
    models, loras = ("animagine", "pony", "noobai", "gemini-flash"), (None, "detail_tweaker")
    records, tags = [], []
    for i in range(rows):
        created = (start + dt.timedelta(seconds=37 * i)).isoformat()
        image, thumb = files[i % FILES]
        fields = {
            "id": f"bench-{i:06d}", "prompt": _prompt(rng, i), "negative_prompt": "lowres",
            "model": models[i % 4], "provider": "selfhosted", "seed": i, "width": 1024,
            "height": 1024, "steps": 28, "cfg_scale": 5.0, "lora": loras[i % 2],
            "lora_scale": 0.8 if i % 2 else None, "reference_hash": None, "elapsed_s": 1.0,
            "cost_usd": 0.0, "batch_id": f"batch-{i // 50}", "parent_id": None,
        }  # fmt: skip
        params = json.dumps({**fields, "created_at": created, "request": {}})
        records.append(row_from_fields(fields, created, image, thumb, params))
        if i % 10 == 3:
            tags.append((fields["id"], f"tag-{i % 40}"))
    with archive._index.write("fill the benchmark archive") as conn:
        conn.executemany(INSERT, records)
        conn.executemany("INSERT INTO tags (record_id, tag) VALUES (?, ?)", tags)
    archive._index.catch_up_words()  # as the archive does after saves, off their path
    archive.close()
    return root / "index.sqlite"


def run(quick: bool = False) -> list[Result]:
    from pixery_widgets.archive import Archive
    from pixery_widgets.core.config import Settings
    from pixery_widgets.widgets.gallery import Gallery

    rows = QUICK_ROWS if quick else ROWS
    repeats = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="pixery-bench-gallery-") as tmp:
        db = build(Path(tmp) / "archive", rows)
        archive = Archive(Path(tmp) / "archive", settings=Settings())
        bare = sqlite3.connect(db)
        try:
            page_sql = BARE_PAGE
            first = times(lambda: Gallery(archive, page_size=PAGE).close(), repeats)
            first_base = times(lambda: bare.execute(page_sql, (PAGE,)).fetchall(), repeats)
            gallery = Gallery(archive, page_size=PAGE)
            searches = {}
            fts = BARE_WORDS
            for word in (_HALF, _COMMON, _RARE):
                got = times(lambda w=word: gallery.command("search", query=w), repeats)
                base = times(
                    lambda w=word: bare.execute(fts, (f'"{w}"*', PAGE)).fetchall(), repeats
                )
                searches[word] = (median(got) * 1000, median(base) * 1000, gallery.total)
            gallery.close()
        finally:
            bare.close()
            archive.close()
    return _rows(rows, median(first) * 1000, median(first_base) * 1000, searches)


def _rows(
    rows: int, first_ms: float, base_ms: float, searches: dict[str, tuple[float, float, int]]
) -> list[Result]:
    """The table's rows from the medians (ms) and each word's matches."""
    scale = f"{rows:,} images"
    out = [
        Result.bound(
            f"gallery first page, {scale}",
            first_ms,
            "ms",
            below=FIRST_PAGE_MS,
            baseline=base_ms,
            note=(
                f"px.Gallery(archive): {PAGE} cards with thumbnails, the count and the menus; "
                f"baseline the bare ORDER BY created_at LIMIT {PAGE} ({first_ms / base_ms:.0f}× it)."
            ),
        )
    ]
    words = (
        (_HALF, "a word in every other prompt"),
        (_COMMON, "common word (1 in 10)"),
        (_RARE, "rare word (1 in 1,000)"),
    )
    for word, label in words:
        ms, base, found = searches[word]
        out.append(
            Result.bound(
                f"gallery text search, {label}, {scale}",
                ms,
                "ms",
                below=SEARCH_MS,
                baseline=base,
                note=(
                    f"{found:,} matches; the page with thumbnails and the count; baseline the "
                    f"bare FTS5 MATCH LIMIT {PAGE} ({ms / base:.0f}× it)."
                ),
            )
        )
    return out
