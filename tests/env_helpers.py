"""Shared test helper: the environment and .env files as a panel reads them."""

from __future__ import annotations

from pathlib import Path

from pixery_widgets.core.config import Settings, load_settings

__all__ = ["Env"]


class Env:
    """Settings from ``values`` (not the real environment); tests change ``values``."""

    def __init__(self, tmp_path: Path, **values: str) -> None:
        self.tmp_path = tmp_path
        self.values = dict(values)

    def load(self) -> Settings:
        return load_settings(environ=self.values, cwd=self.tmp_path, home=self.tmp_path)
