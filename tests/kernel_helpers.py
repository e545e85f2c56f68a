"""Shared by the tests that run notebooks in real kernels: the kernel's environment and
what the kernel printed."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat

from pixery_widgets.core.config import KEY_ENV_NAMES

__all__ = ["kernel_env", "output_texts", "stderr_texts"]

_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def kernel_env(sim_url: str, archive: Path, home: Path) -> dict[str, str]:
    """This process's environment, pointed at the simulator, without any API key or proxy."""
    env = dict(os.environ)
    for names in KEY_ENV_NAMES.values():
        for name in names:
            env.pop(name, None)
    for name in _PROXIES:
        env.pop(name, None)
    env.update(
        {
            "SELFHOSTED_API_URL": sim_url,
            "PIXERY_ARCHIVE_DIR": str(archive),
            "HOME": str(home),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # quiets a debugger warning in the kernel
        }
    )
    return env


def stderr_texts(nb: nbformat.NotebookNode) -> list[str]:
    """Whatever the cells wrote to stderr, one entry per output, with the cell's id."""
    return [
        f"cell {cell.get('id')}: {out.get('text', '')}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.get("output_type") == "stream" and out.get("name") == "stderr"
    ]


def output_texts(nb: nbformat.NotebookNode) -> str:
    """Everything the code cells showed as text (streams, plain text, Markdown, HTML)."""
    parts: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            for mime in ("text/plain", "text/markdown", "text/html"):
                value = out.get("data", {}).get(mime)
                if value:
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)
