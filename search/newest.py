"""Something built from a model's newest row (a fitted vocabulary, a count of concepts), kept
per process until a newer row exists.

Fits and counts live in the database so every web and worker process, on any machine, uses the
same one; asking for the newest primary key (one indexed row; at most every CATALOGUE_TTL s per
process, search.catalogue) is how a new fit reaches each process, and the costly part (parsing
20k terms, 300 KB of counts) runs once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.db import models

from search import catalogue

T = TypeVar("T")
M = TypeVar("M", bound=models.Model)
_built: dict[type, tuple[int, object]] = {}


def built_from_newest(model: type[M], build: Callable[[M], T]) -> T | None:
    """build(newest row) by the model's default ordering, or None while it has no rows."""
    # (kept per process for a moment, search.catalogue: a similar request asked 3 times)
    newest = catalogue.newest_pk(
        model, lambda: model._default_manager.values_list("pk", flat=True).first())
    if newest is None:
        _built.pop(model, None)
        return None
    cached = _built.get(model)
    if cached is None or cached[0] != newest:
        cached = (newest, build(model._default_manager.get(pk=newest)))
        _built[model] = cached
    return cached[1]  # type: ignore[return-value]
