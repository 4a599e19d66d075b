"""The outside peer of the aspect evaluations: arxiv-sanity-lite's "similar papers" ranking.

TfidfVectorizer(word 1-2 grams, stop_words english, max_features 20000, min_df 5, max_df 0.1,
sublinear_tf, its token pattern / accents), fit on the whole dataset's texts (unsupervised, as
arxiv-sanity fits its whole database), then per query a LinearSVC(C=0.01,
class_weight='balanced') with the query as the only positive and every other paper of the
dataset as a negative; candidates ranked by its decision function.
"""

from __future__ import annotations

import time

import numpy as np


class TfidfSvmPeer:
    name = "peer: tfidf+svm (arxiv-sanity-lite)"

    def __init__(self, docs, X=None):
        """X: the tf-idf rows of `docs` when the caller already fitted this same recipe
        (recommend.lexical's on a corpus of >= lexical.SMALL_CORPUS papers is: `bench feed`)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        if X is not None:
            self.X, self.fit_s, self.n_features = X, 0.0, X.shape[1]
            self.bytes_per_paper = float(X.getnnz(axis=1).mean() * 8)
            return

        vectorizer = TfidfVectorizer(
            input="content", encoding="utf-8", decode_error="replace", strip_accents="unicode",
            lowercase=True, analyzer="word", stop_words="english",
            token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2), max_features=20000,
            norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True, max_df=0.1, min_df=5,
        )
        # arxiv-sanity-lite's text is title | authors | summary; no authors here
        t0 = time.time()
        self.X = vectorizer.fit_transform(
            [" ".join(d["title"].split()) + " | " + " ".join(d["abstract"].split()) for d in docs])
        self.fit_s = time.time() - t0
        self.n_features = self.X.shape[1]
        self.bytes_per_paper = float(self.X.getnnz(axis=1).mean() * 8)  # float32 value + int32 column

    def scores(self, query_idx, cand_idx) -> tuple[np.ndarray, float]:
        """(queries x candidates decision values, seconds per query)."""
        S = np.zeros((len(query_idx), len(cand_idx)), dtype=np.float64)
        t0 = time.time()
        for qi, q in enumerate(query_idx):
            S[qi] = self.library_scores([q], cand_idx)
        return S, (time.time() - t0) / max(len(query_idx), 1)

    def library_scores(self, positives, cand_idx) -> np.ndarray:
        """Decision values of the candidates for one SVM with `positives` (rows) as the only
        positives and every other paper as a negative: arxiv-sanity-lite's per-tag model."""
        from sklearn import svm

        y = np.zeros(self.X.shape[0], dtype=np.float32)
        y[list(positives)] = 1
        clf = svm.LinearSVC(class_weight="balanced", verbose=0, max_iter=10000, tol=1e-6, C=0.01)
        clf.fit(self.X, y)
        return clf.decision_function(self.X[cand_idx])


def pool_scores(peer: TfidfSvmPeer, G: np.ndarray, idx) -> dict[str, np.ndarray]:
    """{"peer", "tfidf", "generic"}: the score matrices of a pool ranked against itself."""
    return {"peer": peer.scores(idx, idx)[0], "tfidf": (peer.X[idx] @ peer.X[idx].T).toarray(),
            "generic": G[idx] @ G[idx].T}
