"""What every search reads and almost never changes, kept per process for a moment: the active
embedding space of each aspect, and the names of the vector indexes.

Read from the source (Postgres; for the index names, their shared cache entry in Redis) at
most once per CATALOGUE_TTL seconds per process, instead of a SELECT and a Redis GET in every
request (docs/benchmarks.md "End to end"). A write in this process (a switch, a rollback, a new
space, an index build: EmbeddingSpace saves and deletes, and search.planner.indexes'
invalidation) clears it at once; other processes see it within CATALOGUE_TTL. That is safe
because a search that still runs on the space it read a moment before a switch is served by it
(the registry keeps the previous space with its indexes, search.operations.registry), and an
index name that is a moment out of date costs speed, not results (the planner's queries
repeat the index predicates; an index that is gone just is not used).

Inside a transaction the source is read every time: a transaction sees its own writes (and
the test suite runs each test in one), which a cache of committed state cannot know.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from search.models import EmbeddingSpace

T = TypeVar("T")
_memo: dict[str, tuple[float, Any]] = {}
_lock = threading.Lock()


def _ttl() -> float:
    return float(getattr(settings, "CATALOGUE_TTL", 2.0))


def remembered(name: str, read: Callable[[], T]) -> T:
    """read(), or what it returned less than CATALOGUE_TTL seconds ago in this process."""
    if connection.in_atomic_block:
        return read()
    now = time.monotonic()
    hit = _memo.get(name)
    if hit is not None and now - hit[0] < _ttl():
        return hit[1]
    value = read()
    with _lock:
        _memo[name] = (now, value)
    return value


def forget(name: str | None = None) -> None:
    """Drop one remembered value (or all): the next read goes to the source."""
    with _lock:
        if name is None:
            _memo.clear()
        else:
            _memo.pop(name, None)


def active_spaces() -> dict[str, EmbeddingSpace]:
    """{aspect: its active space}: one query for every aspect."""
    return remembered("active-spaces", lambda: {
        space.aspect: space for space in EmbeddingSpace.objects.filter(is_active=True)})


def aspect_names(read: Callable[[], list[str]]) -> list[str]:
    """The aspect names search.selectors.aspect_names reads (every space's aspect)."""
    return remembered("aspect-names", read)


def newest_pk(model: type[Model], read: Callable[[], Any]) -> Any:
    """The newest row's primary key of a model search.newest builds from (a fit, a count);
    a save or delete of one in this process is seen at once."""
    name = f"newest:{model._meta.label}"
    if name not in _watched:
        _watched.add(name)
        for signal in (post_save, post_delete):
            signal.connect(lambda sender, _name=name, **kwargs: forget(_name), sender=model,
                           weak=False, dispatch_uid=f"catalogue-{name}-{signal is post_save}")
    return remembered(name, read)


_watched: set[str] = set()


def _space_changed(sender, **kwargs) -> None:
    forget("active-spaces")
    forget("aspect-names")


# QuerySet.update() sends no signal: search.operations.registry's switch calls forget() itself
post_save.connect(_space_changed, sender=EmbeddingSpace, dispatch_uid="catalogue-space-saved")
post_delete.connect(_space_changed, sender=EmbeddingSpace, dispatch_uid="catalogue-space-deleted")
