"""Signatures shown rather than written out: keywords declared in one place appear in
``help()`` and ``inspect.signature`` of every function that passes them through.

The request fields (``schema.with_request_fields``) and the archive's search
filters (``Archive.search``/``count``) are declared once each and shown this way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["keyword_only", "show_keywords"]

F = TypeVar("F", bound=Callable[..., Any])
_KINDS = inspect.Parameter


def keyword_only(func: Callable[..., Any]) -> list[inspect.Parameter]:
    """The keyword-only parameters of ``func``, as declared (to show them elsewhere)."""
    return [p for p in inspect.signature(func).parameters.values() if p.kind is _KINDS.KEYWORD_ONLY]


def show_keywords(func: F, inserted: Iterable[inspect.Parameter]) -> F:
    """Show ``inserted`` (keyword-only) in ``func``'s signature, after its positional
    parameters and before its own keyword-only ones; ``func`` takes them by ``**``.
    A name ``func`` declares itself is not inserted again."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    head = [p for p in params if p.kind in (_KINDS.POSITIONAL_ONLY, _KINDS.POSITIONAL_OR_KEYWORD)]
    own = [p for p in params if p.kind is _KINDS.KEYWORD_ONLY]
    rest = [p for p in params if p.kind in (_KINDS.VAR_POSITIONAL, _KINDS.VAR_KEYWORD)]
    named = {p.name for p in params}
    added = [p.replace(kind=_KINDS.KEYWORD_ONLY) for p in inserted if p.name not in named]
    func.__signature__ = sig.replace(parameters=[*head, *added, *own, *rest])  # type: ignore[attr-defined]
    return func
