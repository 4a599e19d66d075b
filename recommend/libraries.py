"""Writes of the reader's loop: libraries, their papers, ratings, and seeding a library.

Every change a ranking model depends on bumps the library's `changed_at` and queues a
retrain once the transaction commits (recommend.tasks.queue_training); the beat entry
"train-stale-reader-models" is the safety net when the broker was down at that moment.
Errors the reader can fix are InvalidParams (a 400 / an inline message); another reader's
private library is LibraryNotFound (a 404: its existence is not revealed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from recommend import tasks
from recommend.models import Library, LibraryPaper, Rating
from search.ingest import normalize_arxiv_id
from search.models import Paper
from search.params import InvalidParams, SearchFilters
from search.planner import filter_sql

MAX_LIBRARIES = 200  # per reader
MAX_IMPORT = 2_000  # ids or entries per import


class LibraryNotFound(LookupError):
    pass


# --- reading what a reader may see ----------------------------------------------------------

def libraries_of(user) -> QuerySet[Library]:
    return Library.objects.filter(owner=user)


def library_for_owner(user, pk: int) -> Library:
    """The reader's own library (to change or to rank a feed by)."""
    found = Library.objects.filter(owner=user, pk=pk).first() if user.is_authenticated else None
    if found is None:
        raise LibraryNotFound(f"no library {pk} among yours")
    return found


def library_for_reader(user, pk: int) -> Library:
    """A library the user may read: their own, or a public one."""
    library = Library.objects.filter(pk=pk).select_related("owner").first()
    if library is None or not (library.is_public or (user.is_authenticated and library.owner_id == user.pk)):
        raise LibraryNotFound(f"no library {pk}")
    return library


# --- libraries -----------------------------------------------------------------------------

def _clean_name(name: object) -> str:
    text = " ".join(str(name or "").split())
    if not text:
        raise InvalidParams({"name": "give the library a name"})
    if len(text) > 120:
        raise InvalidParams({"name": "at most 120 characters"})
    return text


def _clean_keywords(value: object) -> str:
    words = [w.strip() for w in str(value or "").replace("\n", ",").split(",") if w.strip()]
    text = ", ".join(dict.fromkeys(words))
    if len(text) > 500:
        raise InvalidParams({"keywords": "at most 500 characters of keywords"})
    return text


def library_create(*, user, name: object, description: object = "", keywords: object = "",
                   is_public: bool = False) -> Library:
    if libraries_of(user).count() >= MAX_LIBRARIES:
        raise InvalidParams({"name": f"a reader keeps at most {MAX_LIBRARIES} libraries"})
    clean = _clean_name(name)
    try:
        with transaction.atomic():
            library = Library.objects.create(
                owner=user, name=clean, description=str(description or "")[:2000],
                keywords=_clean_keywords(keywords), is_public=bool(is_public))
    except IntegrityError:
        raise InvalidParams({"name": f"you already have a library called {clean!r}"}) from None
    if library.keywords:
        _queue_training(library)
    return library


def library_update(*, library: Library, **changes) -> Library:
    """Rename, describe, publish / unpublish, or change a channel's keywords."""
    fields = []
    if "name" in changes:
        library.name = _clean_name(changes["name"])
        fields.append("name")
    if "description" in changes:
        library.description = str(changes["description"] or "")[:2000]
        fields.append("description")
    if "is_public" in changes:
        library.is_public = bool(changes["is_public"])
        fields.append("is_public")
    if "keywords" in changes:
        keywords = _clean_keywords(changes["keywords"])
        if keywords != library.keywords:
            library.keywords = keywords
            library.changed_at = timezone.now()
            fields += ["keywords", "changed_at"]
    if not fields:
        return library
    try:
        with transaction.atomic():
            library.save(update_fields=fields)
    except IntegrityError:
        raise InvalidParams({"name": f"you already have a library called {library.name!r}"}) from None
    if "keywords" in fields:
        _queue_training(library)
    return library


def library_delete(*, library: Library) -> None:
    library.delete()


def _touch(library: Library) -> None:
    Library.objects.filter(pk=library.pk).update(changed_at=timezone.now())
    _queue_training(library)


def _queue_training(library: Library) -> None:
    user_id, library_id = library.owner_id, library.pk
    transaction.on_commit(lambda: tasks.queue_training(user_id=user_id, library_id=library_id))


def paper_or_error(paper_id: object, field_name: str = "paper") -> Paper:
    try:
        pk = int(str(paper_id))
    except (TypeError, ValueError):
        raise InvalidParams({field_name: f"not a paper id: {str(paper_id)[:40]!r}"}) from None
    paper = Paper.objects.filter(pk=pk).first()
    if paper is None:
        raise InvalidParams({field_name: f"unknown paper id: {pk}"})
    return paper


def library_add(*, library: Library, paper: Paper) -> bool:
    """Save the paper to the library; False when it was there already."""
    _, created = LibraryPaper.objects.get_or_create(library=library, paper=paper)
    if created:
        _touch(library)
    return created


def library_remove(*, library: Library, paper_id: int) -> bool:
    deleted, _ = LibraryPaper.objects.filter(library=library, paper_id=paper_id).delete()
    if deleted:
        _touch(library)
    return bool(deleted)


# --- ratings -------------------------------------------------------------------------------

def parse_rating(value: object) -> int:
    if isinstance(value, bool) or str(value).strip() not in ("1", "-1", "+1"):
        raise InvalidParams({"value": "a rating is 1 (thumbs up) or -1 (thumbs down)"})
    return int(str(value).strip())


def rate(*, user, paper: Paper, value: int) -> Rating:
    rating, _ = Rating.objects.update_or_create(user=user, paper=paper, defaults={"value": value})
    _ratings_changed(user)
    return rating


def unrate(*, user, paper_id: int) -> bool:
    deleted, _ = Rating.objects.filter(user=user, paper_id=paper_id).delete()
    if deleted:
        _ratings_changed(user)
    return bool(deleted)


def _ratings_changed(user) -> None:
    # Ratings shape every model of the reader: the libraries' (their negatives) and the
    # reader's own.
    from recommend import tasks

    user_id = user.pk
    transaction.on_commit(lambda: tasks.queue_training(user_id=user_id, library_id=None))


# --- import / seeding ------------------------------------------------------------------------

@dataclass
class ImportReport:
    added: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # what was given, as given
    errors: list[str] = field(default_factory=list)  # e.g. BibTeX entries without any id

    def as_dict(self) -> dict:
        return {"added": len(self.added), "already_in_library": len(self.already),
                "unknown": self.unknown[:200], "unknown_count": len(self.unknown),
                "errors": self.errors[:200]}


def add_many(library: Library, papers: Iterable[Paper], report: ImportReport) -> ImportReport:
    papers = list({p.pk: p for p in papers}.values())
    present = set(LibraryPaper.objects.filter(library=library, paper__in=papers)
                  .values_list("paper_id", flat=True))
    new = [p for p in papers if p.pk not in present]
    LibraryPaper.objects.bulk_create([LibraryPaper(library=library, paper=p) for p in new],
                                     ignore_conflicts=True)
    report.added += [p.pk for p in new]
    report.already += sorted(present)
    if new:
        _touch(library)
    return report


def parse_arxiv_ids(values: object) -> list[str]:
    """A list, or text with one id per line / comma; URLs and versions allowed."""
    if isinstance(values, str):
        values = values.replace(",", "\n").split()
    if not isinstance(values, list | tuple) or not values:
        raise InvalidParams({"arxiv_ids": "give a list of arXiv ids, e.g. [\"2501.01234\"]"})
    if len(values) > MAX_IMPORT:
        raise InvalidParams({"arxiv_ids": f"at most {MAX_IMPORT} ids per import"})
    return [str(v).strip()[:200] for v in values if str(v).strip()]


def _arxiv_key(text: str) -> str:
    text = text.strip()
    for prefix in ("https://arxiv.org/abs/", "http://arxiv.org/abs/", "https://arxiv.org/pdf/",
                   "arxiv.org/abs/"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
    text = text.removesuffix(".pdf")
    try:
        return normalize_arxiv_id(text)
    except (ValueError, TypeError):
        return ""


def import_arxiv_ids(*, library: Library, ids: Sequence[str]) -> ImportReport:
    report = ImportReport()
    keys = {given: _arxiv_key(given) for given in ids}
    found = {p.arxiv_id: p for p in Paper.objects.filter(arxiv_id__in=[k for k in keys.values() if k])}
    report.unknown = [given for given, key in keys.items() if key not in found]
    return add_many(library, (found[k] for k in keys.values() if k in found), report)


def seed_from_author(*, library: Library, author: str, limit: int = 50) -> ImportReport:
    """Every paper (up to `limit`, newest first) whose author list names this author: the
    cold start of "papers like mine"."""
    name = " ".join(str(author or "").split())
    if not name:
        raise InvalidParams({"author": "give an author name"})
    where, params = filter_sql(SearchFilters(authors=(name,)))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT p.id FROM search_paper p WHERE {where} "
                       "ORDER BY p.published DESC NULLS LAST, p.id LIMIT %s", [*params, limit])
        ids = [int(r[0]) for r in cursor.fetchall()]
    report = ImportReport()
    if not ids:
        report.unknown = [name]
        return report
    return add_many(library, Paper.objects.filter(pk__in=ids), report)
