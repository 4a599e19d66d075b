"""Shared words, one of the signals that rerank "similar by aspect" (recommend.rerank).

Measured (docs/benchmarks.md "Lexical fusion", the deleted bench/aspects_fusion_shortlist.py): reranking
the top 100 papers by an aspect vector with z(vector cosine) + w * z(tf-idf cosine), both
z-scored over that shortlist, lifts held-out MAP@10 on every aspect we can measure: pwc
"same task" 0.320 -> 0.362, SciREX dataset 0.510 -> 0.539, and, on tasks never seen in
training, 0.505 -> 0.622 over the generic vector (where the tf-idf peer alone scores 0.602:
words carry what a general-purpose embedding blurs, like method and dataset names).

The features are arxiv-sanity-lite's (the outside peer): word 1-2 grams, English stop words,
20k terms, min_df 5, max_df 0.1, sublinear tf. The vocabulary and idf are fitted on the corpus
by a background job (fit_model) and stored versioned in the database (LexicalModel); papers'
tf-idf vectors are computed on the fly for the shortlist only (~100 abstracts: ~10 ms), so no
per-paper storage goes stale.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from recommend.models import LexicalModel
from search.embedders import paper_text
from search.models import Paper
from search.newest import built_from_newest

FIT_SAMPLE = 50_000  # papers read by a fit (a uniform sample of bigger corpora)
FIT_MIN = 200  # papers before a fit is worth it; below, similarity is the vector's alone
# Below this corpus size min_df 5 / max_df 0.1 would leave almost no terms (a 40-paper corpus
# has few words in 5 papers, and 10% of it is 4 papers).
SMALL_CORPUS = 1_000


def _vectorizer(n_papers: int | None = None, vocabulary=None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    small = n_papers is not None and n_papers < SMALL_CORPUS
    return TfidfVectorizer(
        strip_accents="unicode", lowercase=True, analyzer="word", stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2),
        max_features=None if vocabulary is not None else 20_000, norm="l2", use_idf=True,
        smooth_idf=True, sublinear_tf=True, vocabulary=vocabulary,
        min_df=1 if small else 5, max_df=1.0 if small else 0.1,
    )


def fit_model() -> LexicalModel | None:
    """Fit the vocabulary and idf on (a sample of) the corpus; None when it is too small.
    Idempotent: the same fit is stored once (its version is a hash of terms and idf)."""
    corpus = Paper.objects.count()
    if corpus < FIT_MIN:
        return None
    rows = list(Paper.objects.order_by("?").values_list("title", "abstract")[:FIT_SAMPLE])
    vectorizer = _vectorizer(len(rows))
    vectorizer.fit(paper_text(t, a) for t, a in rows)
    terms = vectorizer.get_feature_names_out().tolist()
    idf = [round(float(v), 6) for v in vectorizer.idf_]
    version = hashlib.sha1(json.dumps([terms, idf]).encode()).hexdigest()[:12]
    model, _ = LexicalModel.objects.get_or_create(
        version=version, defaults={"terms": terms, "idf": idf, "papers": len(rows),
                                   "corpus": corpus})
    return model


def needs_fit() -> bool:
    """No fit yet on a corpus big enough, or the corpus has doubled since the last one."""
    latest = LexicalModel.objects.only("corpus").first()
    corpus = Paper.objects.count()
    return corpus >= FIT_MIN and (latest is None or corpus >= 2 * latest.corpus)


class Fitted(NamedTuple):
    version: str
    vectorizer: Any  # sklearn TfidfVectorizer with the stored vocabulary and idf
    terms: np.ndarray  # term of each column


def current() -> Fitted | None:
    """The newest fit, or None. Built once per process (loading 20k terms costs ~50 ms)."""
    return built_from_newest(LexicalModel, _loaded)


def _loaded(model: LexicalModel) -> Fitted:
    vectorizer = _vectorizer(vocabulary={t: i for i, t in enumerate(model.terms)})
    vectorizer.idf_ = np.asarray(model.idf, dtype=np.float64)
    return Fitted(model.version, vectorizer, np.asarray(model.terms, dtype=object))


# Each text's tf-idf row, per process: a "similar" request transforms its 100-paper shortlist
# (most of its CPU: tokenising 100 abstracts), and the same papers come back in many
# shortlists. A row depends only on the fit and the text (rows are normalised one by one),
# so the key is the fit's version and a digest of the text; bounded, oldest dropped first.
_ROWS_MAX = 50_000
_rows: dict[tuple[str, bytes], Any] = {}
_rows_lock = threading.Lock()


def tfidf_rows(fitted: Fitted, texts: Sequence[str]):
    from scipy.sparse import vstack

    if not texts:
        return fitted.vectorizer.transform([]).tocsr()
    keys = [(fitted.version, hashlib.sha1(text.encode()).digest()) for text in texts]
    missing = [i for i, key in enumerate(keys) if key not in _rows]
    if missing:
        fresh = fitted.vectorizer.transform([texts[i] for i in missing]).tocsr()
        with _rows_lock:
            for row, i in enumerate(missing):
                _rows[keys[i]] = fresh[row]
            while len(_rows) > _ROWS_MAX:
                _rows.pop(next(iter(_rows)))
    found = {key: _rows.get(key) for key in keys}  # (another thread may have evicted one)
    lost = [i for i, key in enumerate(keys) if found[key] is None]
    if lost:
        again = fitted.vectorizer.transform([texts[i] for i in lost]).tocsr()
        for row, i in enumerate(lost):
            found[keys[i]] = again[row]
    return vstack([found[key] for key in keys], format="csr")
