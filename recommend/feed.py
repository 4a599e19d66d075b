"""The reader's feed: papers new in a window, ranked by the model of a library or of the
reader (recommend.ranking, trained by workers), each with the reason it is there.

Candidates: for every aspect the model weighs, the planner's nearest papers to the model's
direction in that space (search.planner.vector_ranking), with the reader's filters and the
window as a filter, minus what the reader has saved, rated or been mailed. The planner never
returns short while matching papers exist, so neither does the feed. The pool is then scored
exactly by the full model (vectors and words). Shared by the page, the API, the Atom feed
and the digests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from recommend import lexical, ranking, training
from recommend.models import DigestItem, Library, LibraryPaper, Rating, ReaderModel, ReaderProfile
from recommend.params import FeedParams
from search import concepts
from search.models import EmbeddingSpace, Paper
from search.params import InvalidParams, SearchFilters
from search.planner import vector_ranking
from search.selectors import NotReady, ScoredPaper, concept_weights, hydrate
from search.vectors import l2_normalise

# Candidates per weighted aspect: at least this many, 3 * k for larger pages. Their union
# (~2x this) is scored exactly; the words are computed for it alone (~0.5 ms per paper).
POOL_PER_ASPECT = 60
VISIT_GAP = timedelta(hours=1)  # a reload within this is the same visit
LIKE_SHOWN = 2  # library papers named in a reason


@dataclass
class Feed:
    results: list[ScoredPaper]
    since: datetime
    library: Library | None
    model: dict[str, Any]
    plan: dict[str, Any]
    notice: str = ""


def profile_of(user) -> ReaderProfile:
    profile, _ = ReaderProfile.objects.get_or_create(user=user)
    return profile


def record_visit(user) -> None:
    """Move "since your last visit" forward, unless this is a reload of the same visit."""
    profile = profile_of(user)
    now = timezone.now()
    if profile.feed_visited_at is None or now - profile.feed_visited_at > VISIT_GAP:
        profile.previous_visit_at = profile.feed_visited_at
    profile.feed_visited_at = now
    profile.save(update_fields=["feed_visited_at", "previous_visit_at"])


def default_since(user) -> datetime:
    profile = profile_of(user)
    fallback = timezone.now() - timedelta(days=settings.FEED_DEFAULT_DAYS)
    return profile.previous_visit_at or fallback


def seen_papers(user) -> list[int]:
    """Saved, rated or already mailed: never suggested again."""
    seen = set(LibraryPaper.objects.filter(library__owner=user).values_list("paper_id", flat=True))
    seen |= set(Rating.objects.filter(user=user).values_list("paper_id", flat=True))
    seen |= set(DigestItem.objects.filter(digest__user=user).values_list("paper_id", flat=True))
    return sorted(seen)


def reader_model(user, library: Library | None) -> tuple[ranking.ReaderModel, dict[str, Any]]:
    """The stored model, queueing a retrain when it is stale; until one exists the centroid
    of the positives. InvalidParams when there is nothing to rank by yet."""
    from recommend.tasks import queue_training

    row = ReaderModel.objects.filter(user=user, library=library).first()
    current = training.current_version(user.pk, library)
    if current is None:
        what = f"library {library.name!r} has no papers yet" if library else "you have not saved or rated a paper yet"
        raise InvalidParams({"library": f"{what}: save papers, rate them or give the library "
                                        "keywords, and the feed ranks new papers by them"})
    if row is None or row.version != current:
        user_id, library_id = user.pk, library.pk if library else None
        transaction.on_commit(lambda: queue_training(user_id=user_id, library_id=library_id))
    if row is not None:
        info = {"kind": row.kind, "trained_at": row.trained_at.isoformat(), "positives": row.positives,
                "negatives": row.negatives, "current": row.version == current}
        return training.load(row), info
    model = training.provisional(user.pk, library)
    if model is None:  # a keyword channel not trained yet: nothing to rank by until it is
        raise NotReady("this channel's model is being trained from its keywords; try again in a few seconds")
    return model, {"kind": "centroid", "provisional": True, "current": False}


def reader_feed(*, user, params: FeedParams) -> Feed:
    library = None
    if params.library_id is not None:
        library = Library.objects.filter(owner=user, pk=params.library_id).first()
        if library is None:
            raise InvalidParams({"library": f"no library {params.library_id} among yours"})
    model, info = reader_model(user, library)
    since = params.since or default_since(user)
    results, plan = rank_new(user=user, library=library, model=model, since=since, k=params.k,
                             filters=params.filters)
    notice = "" if results else ("no new papers in this window match; widen the window or the filters")
    return Feed(results, since, library, info, plan, notice)


def rank_new(*, user, library: Library | None, model: ranking.ReaderModel, since: datetime, k: int,
             filters: SearchFilters, exclude: list[int] | None = None) -> tuple[list[ScoredPaper], dict]:
    spaces = training.active_spaces()
    directions = {a: q for a, q in model.query_vectors().items() if a in spaces and np.any(q)}
    if not directions:
        raise NotReady("the model's embedding spaces are not active yet; try again shortly")
    window = replace(filters, added_after=since)
    exclude = seen_papers(user) if exclude is None else exclude
    pool: set[int] = set()
    plans = {}
    depth = max(POOL_PER_ASPECT, k * 3)
    for aspect, direction in directions.items():
        ranked, plans[aspect] = vector_ranking(space=spaces[aspect], vector=l2_normalise(direction),
                                               k=depth, filters=window, exclude_ids=exclude)
        pool.update(pid for pid, _ in ranked)
    ids = sorted(pool)
    if not ids:
        return [], {"candidates": 0, **plans}
    fitted = lexical.current()
    use_words = fitted is not None and model.words_version == fitted.version
    weighed = {a: space for a, space in spaces.items() if a in model.coef}  # not the 0-weight ones
    feats = training.features(ids, weighed, fitted if use_words else None)
    scores = model.score(feats)
    order = np.argsort(-scores, kind="stable")[:k]
    results = hydrate([(ids[i], float(scores[i])) for i in order])
    parts = model.contributions(feats)
    explain(results, {pid: row for row, pid in enumerate(ids)}, parts, feats, model, library, user,
            fitted if use_words else None, spaces.get("generic"))
    return results, {"candidates": len(ids), **plans}


def positives_of(user, library: Library | None) -> list[int]:
    examples = training.library_examples(library) if library else training.reader_examples(user.pk)
    return examples.positive


def explain(results: list[ScoredPaper], row_of: dict[int, int], parts: dict[str, np.ndarray],
            feats: ranking.PaperFeatures, model: ranking.ReaderModel, library: Library | None, user,
            fitted: lexical.Fitted | None, generic: EmbeddingSpace | None) -> None:
    """Per result: the block that added most to its score (the aspect that matched), the
    library papers it is most like (generic cosine), the task / dataset names it shares with
    them, and the words that weigh most in both it and the model."""
    if not results:
        return
    positives = positives_of(user, library)[-300:]
    anchors = training.features(positives, {"generic": generic} if generic else {}, None)
    anchor_papers = Paper.objects.only("pk", "title", "concepts").in_bulk(positives)
    idf = concept_weights().idf
    terms = fitted.terms if fitted is not None else None
    for item in results:
        row = row_of[item.paper.pk]
        shares = {b: round(float(v[row]), 4) for b, v in parts.items()}
        best = max((b for b in shares if b != ranking.WORDS), key=lambda b: shares[b], default="generic")
        like: list[dict[str, Any]] = []
        if positives and "generic" in anchors.vectors and "generic" in feats.vectors:
            sims = anchors.vectors["generic"] @ feats.vectors["generic"][row]
            for i in np.argsort(-sims)[:LIKE_SHOWN]:
                paper = anchor_papers.get(positives[int(i)])
                if paper is not None:
                    like.append({"id": paper.pk, "title": paper.title, "similarity": round(float(sims[i]), 3)})
        shared_names: dict[str, list[str]] = {}
        mine = concepts.weighted(item.paper.concepts, idf)
        for anchor in like:
            paper = anchor_papers[anchor["id"]]
            for c in concepts.shared(concepts.weighted(paper.concepts, idf), mine, limit=4):
                shared_names.setdefault(concepts.kind_of(c), [])
                if concepts.name_of(c) not in shared_names[concepts.kind_of(c)]:
                    shared_names[concepts.kind_of(c)].append(concepts.name_of(c))
        words: list[str] = []
        if terms is not None and feats.words is not None and ranking.WORDS in model.coef:
            both = feats.words[row].multiply(model.coef[ranking.WORDS]).tocoo()
            words = [str(terms[c]) for v, c in sorted(zip(both.data, both.col, strict=True), reverse=True)[:5]
                     if v > 0]
        item.details["explanation"] = {
            "aspect": best, "contributions": shares, "like": like,
            "shared_concepts": shared_names, "words": words,
            "reason": reason_text(best, like, shared_names, words),
        }


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def reason_text(aspect: str, like: list[dict], names: dict[str, list[str]], words: list[str]) -> str:
    """One line, for the page, the Atom entry and the digest."""
    parts = []
    if like:
        parts.append(f"like “{_shorten(like[0]['title'], 90)}”")
    if aspect != "generic":
        parts.append(f"same {aspect}")
    flat = [n for kind in ("task", "dataset") for n in names.get(kind, [])][:2]
    if flat:
        parts.append("shares " + ", ".join(flat))
    elif words:
        parts.append("words: " + ", ".join(words[:3]))
    return "; ".join(parts) or "close to your library"
