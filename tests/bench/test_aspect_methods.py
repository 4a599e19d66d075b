"""Fast tests of the evaluations' aspect methods, metrics and adapter training (no DB, no real model: a
tiny deterministic fake encoder)."""

import hashlib
import re

import numpy as np
import pytest

from bench.adapter_training import apply_adapter, train_adapter
from bench.aspect_methods import (
    GenericMethod,
    MaxSimMethod,
    MixtureMethod,
    SentenceSelectMethod,
    self_retrieval_map,
)
from bench.encoders import CachedEncoder
from bench.metrics import bootstrap_ratio, evaluate, per_query_metrics, relevance_from_labels
from search.sentences import split_sentences


class FakeEncoder:
    """Hashed bag of lower-cased words -> 64-d, L2-normalised.  Deterministic, no model."""

    name = "fake"
    dim = 64

    def __init__(self):
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z0-9]+", t.lower()):
                h = int(hashlib.md5(w.encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0 if (h >> 8) % 2 else -1.0
            n = np.linalg.norm(out[i])
            out[i] = out[i] / n if n else out[i]
        return out


# ---------------------------------------------------------------- metrics (hand computed)

def test_metrics_hand_computed_example():
    # one query, 12 candidates; scores put candidates in order 0, 1, ..., 11
    scores = np.array([np.linspace(1.0, 0.0, 12)])
    relevant = [{0, 2, 11}]  # hits at ranks 1 and 3; candidate 11 (rank 12) is outside the top 10
    m = evaluate(scores, relevant)
    assert m["n_queries"] == 1
    assert m["p_at_10"] == pytest.approx(2 / 10)
    assert m["map_at_10"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert m["ndcg_at_10"] == pytest.approx((1 + 1 / np.log2(4)) / idcg)


def test_metrics_skip_queries_without_relevant_and_average():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1], [0.3, 0.2, 0.1]])
    relevant = [{1}, {1}, set()]  # query 0 finds its item at rank 3, query 1 at rank 1; query 2 skipped
    pq = per_query_metrics(scores, relevant)
    assert [q["query"] for q in pq] == [0, 1]
    m = evaluate(scores, relevant)
    assert m["n_queries"] == 2
    assert m["map_at_10"] == pytest.approx((1 / 3 + 1.0) / 2)
    assert m["p_at_10"] == pytest.approx(0.1)
    assert m["ndcg_at_10"] == pytest.approx((1 / np.log2(4) + 1.0) / 2)


def test_relevance_from_labels_excludes_self():
    labels = [{"a"}, {"a", "b"}, {"c"}]
    rel, ex = relevance_from_labels(labels, labels, same_items=True)
    assert rel == [{1}, {0}, set()]
    # self-similarity is highest but excluded, so the relevant item is rank 1
    S = np.array([[1.0, 0.5, 0.6], [0.5, 1.0, 0.4], [0.6, 0.4, 1.0]])
    assert evaluate(S, rel, exclude=ex)["map_at_10"] == pytest.approx((0.5 + 1.0) / 2)


# ---------------------------------------------------------------- sentence selection

ABSTRACT = (
    "Semantic image segmentation is an important problem for autonomous driving. "
    "Current systems are slow, e.g. they run at 2 fps. "
    "We propose a novel architecture based on residual networks with two processing streams. "
    "Experiments on the Cityscapes dataset show 71.8% mIoU, a state-of-the-art result."
)
DOC = {"title": "Full-resolution residual networks", "abstract": ABSTRACT}


def test_split_sentences_keeps_abbreviations():
    s = split_sentences(ABSTRACT)
    assert len(s) == 4
    assert s[1].startswith("Current systems are slow, e.g. they")


@pytest.mark.parametrize("aspect, expected", [
    ("method", "We propose a novel architecture"),
    ("dataset", "Experiments on the Cityscapes dataset"),
    ("task", "Semantic image segmentation is an important problem"),
])
def test_sentence_selector_picks_role_sentence(aspect, expected):
    sel = SentenceSelectMethod(FakeEncoder(), k=1)
    chosen = sel.select([DOC], aspect)[0]
    assert len(chosen) == 1 and chosen[0].startswith(expected)


def test_sentence_vectors_are_aspect_specific_and_normalised():
    sel = SentenceSelectMethod(FakeEncoder(), k=1, mode="mean")
    vm, vd = sel.encode([DOC], "method"), sel.encode([DOC], "dataset")
    assert np.allclose(np.linalg.norm(vm, axis=1), 1.0, atol=1e-5)
    assert float(vm[0] @ vd[0]) < 0.999


def test_maxsim_prefers_the_paper_with_the_same_method_sentence():
    sel = SentenceSelectMethod(FakeEncoder(), k=1, include_title=False)
    q = {"title": "A", "abstract": "Parsing is hard. We propose a graph transformer with edge attention."}
    same = {"title": "B", "abstract": "Translation is hard. We propose a graph transformer with edge attention."}
    other = {"title": "C", "abstract": "Parsing is hard. We propose a convolutional recurrent tagger."}
    S = MaxSimMethod(sel).score([q], [same, other], "method")
    assert S.shape == (1, 2) and S[0, 0] > S[0, 1]


# ---------------------------------------------------------------- adapter

def _toy(n_per=20, n_cls=6, d=32, seed=0):
    # class signal lives in 4 dims that are swamped by large nuisance variation in the others
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_cls, 4))
    X, y = [], []
    for c in range(n_cls):
        sig = centers[c] + 0.3 * rng.normal(size=(n_per, 4))
        noise = 3.0 * rng.normal(size=(n_per, d - 4))
        X.append(np.hstack([sig, noise]))
        y += [{c}] * n_per
    return np.vstack(X).astype(np.float32), y


def test_adapter_training_reduces_loss_and_improves_retrieval():
    X, y = _toy()
    Xv, yv = _toy(seed=1)
    # no time limit: a busy CI machine must not cut training short and fail the test
    W, info = train_adapter(X, y, epochs=60, lr=5e-3, batch_size=32, seed=0, time_limit_s=1e9)
    assert W.shape == (32, 32)
    assert info["losses"][-1] < 0.7 * info["losses"][0]
    before = self_retrieval_map(apply_adapter(Xv, None), yv)
    after = self_retrieval_map(apply_adapter(Xv, W), yv)
    assert after > before + 0.1


def test_adapter_low_rank_and_identity_when_no_pairs():
    X, y = _toy(d=16)
    W, info = train_adapter(X, y, rank=4, epochs=5, seed=0, time_limit_s=10)
    assert W.shape == (16, 16) and np.linalg.matrix_rank(W - np.eye(16), tol=1e-6) <= 4
    W0, info0 = train_adapter(X[:3], [{"a"}, {"b"}, {"c"}], epochs=3)
    assert np.allclose(W0, np.eye(16)) and info0["n_anchors"] == 0


# ---------------------------------------------------------------- mixture + cache

def test_mixture_alpha_chosen_on_validation():
    enc = FakeEncoder()
    gen = GenericMethod(enc)

    class Oracle:  # an "aspect" method whose vectors are one-hot labels
        multi_vector = False
        name = "oracle"

        def encode(self, docs, aspect):
            V = np.zeros((len(docs), 64), dtype=np.float32)
            for i, d in enumerate(docs):
                V[i, d["lab"]] = 1.0
            return V

    docs = [{"title": f"t{i} word{i}", "abstract": f"x{i} y{i*7} z", "lab": i % 3} for i in range(12)]
    mix = MixtureMethod(Oracle(), gen)
    alpha = mix.fit_alpha(docs, [{d["lab"]} for d in docs], "task")
    assert alpha >= 0.5
    assert mix.val_curve["task"][-1][1] == pytest.approx(1.0)


def test_cached_encoder_only_encodes_new_texts(tmp_path):
    fake = FakeEncoder()
    enc = CachedEncoder(fake, cache_dir=tmp_path)
    a = enc.encode(["alpha beta", "gamma"])
    assert fake.calls == 1
    enc2 = CachedEncoder(fake, cache_dir=tmp_path)  # reload from disk
    b = enc2.encode(["gamma", "alpha beta"])
    assert fake.calls == 1 and np.allclose(a[::-1], b)
    enc2.encode(["delta"])
    assert fake.calls == 2


def test_bootstrap_ratio_brackets_the_observed_ratio():
    rng = np.random.default_rng(0)
    per_query = {"app": [{"ap": a} for a in rng.uniform(0.4, 0.8, 200)],
                 "generic": [{"ap": a} for a in rng.uniform(0.2, 0.4, 200)],
                 "peer": [{"ap": a} for a in rng.uniform(0.1, 0.3, 200)]}
    observed = np.mean([q["ap"] for q in per_query["app"]]) / np.mean([q["ap"] for q in per_query["generic"]])
    low, high = bootstrap_ratio(per_query, "app")
    assert low < observed < high
    assert low > 1.5 and high < 2.5
