"""Training the readers' ranking models (recommend.ranking) from what they saved and rated.

Runs in workers only (recommend.tasks); the feed request reads the stored artifact. A model's
`version` hashes everything it was trained from (examples, keywords, the spaces and the
tf-idf fit it read, the trainer's format), so "is it current?" is one hash away and a retrain
of an unchanged library is a no-op.

- a library's model: positives = its papers (+ for a topic channel, the papers its keywords
  find: Lbl2Vec's seed documents), negatives = the owner's thumbs-down;
- a reader's model (the feed without a library): positives = every library's papers and the
  thumbs-up, negatives = the thumbs-down.
Both get BACKGROUND_SAMPLE papers of the corpus as weak negatives.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from django.db import connection, transaction

from recommend import lexical, ranking
from recommend.models import Library, LibraryPaper, Rating, ReaderModel
from search.embedders import paper_text
from search.models import EmbeddingSpace, Paper
from search.params import SearchParams
from search.selectors import stored_vectors

KEYWORD_SEEDS = 20  # papers a channel's keywords contribute as positives


def active_spaces() -> dict[str, EmbeddingSpace]:
    return {s.aspect: s for s in EmbeddingSpace.objects.filter(is_active=True).order_by("aspect")}


def features(paper_ids: list[int], spaces: dict[str, EmbeddingSpace],
             fitted: lexical.Fitted | None) -> ranking.PaperFeatures:
    """The stored features of these papers, rows in the given order: per given space its
    vector (a zero row when missing), and their tf-idf words under `fitted` (none if None)."""
    n = len(paper_ids)
    vectors: dict[str, np.ndarray] = {}
    for aspect, space in spaces.items():
        found = stored_vectors(space, paper_ids)
        matrix = np.zeros((n, space.dimension), dtype=np.float32)
        for row, pid in enumerate(paper_ids):
            if pid in found:
                matrix[row] = found[pid]
        vectors[aspect] = matrix
    if fitted is None or not n:
        return ranking.PaperFeatures(vectors)
    return ranking.PaperFeatures(vectors, words_of(paper_ids, fitted), fitted.version)


# A paper's tf-idf row under one fit never changes (a changed paper has a new content hash but
# the same id: keyed by both). New papers are the same for every reader, so the feed and the
# digest run keep reading the same rows: kept per process, bounded.
_WORDS: dict[tuple[str, int, str], sp.csr_matrix] = {}
WORDS_CACHED = 50_000


def words_of(paper_ids: list[int], fitted: lexical.Fitted) -> sp.csr_matrix:
    rows = dict(Paper.objects.filter(pk__in=paper_ids).values_list("pk", "content_hash"))
    keys = {pid: (fitted.version, pid, rows.get(pid, "")) for pid in paper_ids}
    missing = [pid for pid in paper_ids if keys[pid] not in _WORDS]
    if missing:
        texts = {pk: paper_text(title, abstract) for pk, title, abstract in
                 Paper.objects.filter(pk__in=missing).values_list("pk", "title", "abstract")}
        computed = fitted.vectorizer.transform([texts.get(pid, "") for pid in missing]).tocsr()
        if len(_WORDS) + len(missing) > WORDS_CACHED:
            _WORDS.clear()
        for row, pid in enumerate(missing):
            _WORDS[keys[pid]] = computed[row]
    return sp.vstack([_WORDS[keys[pid]] for pid in paper_ids], format="csr")


@dataclass
class Examples:
    positive: list[int]
    negative: list[int]
    keywords: str = ""


def library_examples(library: Library) -> Examples:
    positive = sorted(LibraryPaper.objects.filter(library=library).values_list("paper_id", flat=True))
    negative = sorted(Rating.objects.filter(user_id=library.owner_id, value=-1)
                      .values_list("paper_id", flat=True))
    return Examples(positive, [p for p in negative if p not in set(positive)], library.keywords)


def reader_examples(user_id: int) -> Examples:
    saved = set(LibraryPaper.objects.filter(library__owner_id=user_id).values_list("paper_id", flat=True))
    ratings = dict(Rating.objects.filter(user_id=user_id).values_list("paper_id", "value"))
    positive = sorted((saved | {p for p, v in ratings.items() if v > 0}) - {p for p, v in ratings.items() if v < 0})
    negative = sorted(p for p, v in ratings.items() if v < 0)
    keywords = ", ".join(k for k in Library.objects.filter(owner_id=user_id)
                         .exclude(keywords="").values_list("keywords", flat=True))
    return Examples(positive, negative, keywords)


def version_of(examples: Examples, spaces: dict[str, EmbeddingSpace], words_version: str | None) -> str:
    key = json.dumps([ranking.FORMAT, examples.positive, examples.negative, examples.keywords,
                      sorted((a, s.pk) for a, s in spaces.items()), words_version])
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def current_version(user_id: int, library: Library | None) -> str | None:
    """What the subject's model would be trained from now; None when there is nothing to
    learn from (no positives, no keywords)."""
    examples = library_examples(library) if library else reader_examples(user_id)
    if not examples.positive and not examples.keywords:
        return None
    fitted = lexical.current()
    return version_of(examples, active_spaces(), fitted.version if fitted else None)


def keyword_seeds(keywords: str, exclude: set[int]) -> list[int]:
    """The papers a channel's keywords find (hybrid search: the keywords' embedding and their
    words), best first."""
    from search.selectors import paper_search

    if not keywords.strip():
        return []
    result = paper_search(params=SearchParams(query=keywords.replace(",", " "), k=KEYWORD_SEEDS + len(exclude),
                                              mode="hybrid"))
    return [r.paper.pk for r in result.results if r.paper.pk not in exclude][:KEYWORD_SEEDS]


def background_sample(exclude: set[int], n: int) -> list[int]:
    with connection.cursor() as cursor:
        # TABLESAMPLE would be cheaper on a huge table, but it returns nothing on a tiny one
        cursor.execute("SELECT id FROM search_paper WHERE NOT (id = ANY(%s)) ORDER BY random() LIMIT %s",
                       [list(exclude), n])
        return [int(r[0]) for r in cursor.fetchall()]


def train(user_id: int, library: Library | None) -> ReaderModel | None:
    """Train (or keep, when current) the model of a library or of a reader; None (and any
    old model deleted) when there is nothing to learn from."""
    existing = ReaderModel.objects.filter(user_id=user_id, library=library).first()
    examples = library_examples(library) if library else reader_examples(user_id)
    spaces = active_spaces()
    fitted = lexical.current()
    if (not examples.positive and not examples.keywords) or "generic" not in spaces:
        if existing:
            existing.delete()
        return None
    version = version_of(examples, spaces, fitted.version if fitted else None)
    if existing and existing.version == version:
        return existing
    started = time.perf_counter()
    positive = list(examples.positive)
    if examples.keywords:
        positive += keyword_seeds(examples.keywords, set(positive) | set(examples.negative))
    if not positive:
        return None
    taken = set(positive) | set(examples.negative)
    background = background_sample(taken, ranking.BACKGROUND_SAMPLE)
    model = ranking.train(features(positive, spaces, fitted), features(examples.negative, spaces, fitted),
                          features(background, spaces, fitted))
    with transaction.atomic():
        row, _ = ReaderModel.objects.select_for_update().update_or_create(
            user_id=user_id, library=library,
            defaults={"version": version, "kind": model.kind, "artifact": model.to_bytes(),
                      "positives": len(positive), "negatives": len(examples.negative),
                      "train_ms": int((time.perf_counter() - started) * 1000)})
    return row


def load(row: ReaderModel) -> ranking.ReaderModel:
    return ranking.ReaderModel.from_bytes(bytes(row.artifact))


def provisional(user_id: int, library: Library | None) -> ranking.ReaderModel | None:
    """Until the worker has trained a model: the centroid of the positives (a mean of a few
    stored vectors, cheap enough for a request), or None without positives."""
    examples = library_examples(library) if library else reader_examples(user_id)
    if not examples.positive:
        return None
    spaces = active_spaces()
    empty = features([], spaces, None)
    return ranking.train(features(examples.positive[-200:], spaces, None), empty, empty)


def stale_subjects(limit: int = 500) -> list[tuple[int, int | None]]:
    """(user id, library id or None) whose model is missing or was trained from other
    examples than they have now: the beat sweep retrains them (the retrain queued on every
    change covers the rest; this catches the ones lost while the broker was down)."""
    out: list[tuple[int, int | None]] = []
    trained = {(m.user_id, m.library_id): m.version
               for m in ReaderModel.objects.only("user_id", "library_id", "version")}
    for library in Library.objects.order_by("pk"):
        version = current_version(library.owner_id, library)
        if version is not None and trained.get((library.owner_id, library.pk)) != version:
            out.append((library.owner_id, library.pk))
    users = set(Library.objects.values_list("owner_id", flat=True)) | set(
        Rating.objects.values_list("user_id", flat=True).distinct())
    for user_id in sorted(users):
        version = current_version(user_id, None)
        if version is not None and trained.get((user_id, None)) != version:
            out.append((user_id, None))
        if len(out) >= limit:
            break
    return out[:limit]
