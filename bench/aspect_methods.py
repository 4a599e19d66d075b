"""Candidate aspect-vector methods with a common interface.

Every method has
    fit(train_docs, labels=None, **kw) -> self      (labels: {aspect: [set(label), ...]})
    encode(docs, aspect) -> np.ndarray              (n, d) float32, rows L2-normalised
    score(query_docs, cand_docs, aspect) -> (nq, nc) similarity matrix
    bytes_per_paper(docs, aspect) -> float          storage needed per paper for this aspect
Docs are mappings with "title" and "abstract".  `encoder` is anything with
`encode(list[str]) -> (n, d) L2-normalised array` (MiniLM via bench.encoders.CachedEncoder; a fake
in the tests).  MaxSim has no single vector; its `encode` raises and `score` is used instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.adapter_training import apply_adapter, train_adapter
from bench.metrics import evaluate, relevance_from_labels
from search.sentences import cue_score, normalize_ws, position_prior, split_sentences
from search.vectors import l2_normalise as l2n

FLOAT32 = 4


def doc_text(doc) -> str:
    """The generic text of a paper: title + ". " + abstract, whitespace-normalised."""
    return normalize_ws(doc["title"]) + ". " + normalize_ws(doc["abstract"])



# Prototype prompts: a sentence's similarity to these is a soft cue for its role.
PROTOTYPES: dict[str, list[str]] = {
    "task": [
        "The problem we address in this paper is a challenging task.",
        "This task aims to automatically recognize, predict or generate the target output.",
        "We study the problem of learning to solve this task.",
    ],
    "method": [
        "We propose a novel model architecture based on a neural network.",
        "Our approach uses a new algorithm with an attention mechanism and a new loss.",
        "In this paper we introduce a framework that combines these techniques.",
    ],
    "dataset": [
        "Experiments on the benchmark dataset show state-of-the-art results.",
        "We evaluate our approach on the standard corpus and benchmarks.",
        "Our method achieves the best accuracy on the dataset.",
    ],
}
PROTOTYPES["area"] = PROTOTYPES["task"]

# Prefix prompts for the "prompt" method (prepended to title + abstract).
PREFIXES: dict[str, str] = {
    "task": "Research task and problem addressed: ",
    "method": "Method, model and approach proposed: ",
    "dataset": "Datasets and benchmarks used in experiments: ",
    "area": "Research field and area: ",
}


def self_retrieval_map(V: np.ndarray, labels: Sequence[set], scores: np.ndarray | None = None) -> float:
    """MAP@10 ranking a set of papers against itself (diagonal excluded); for validation."""
    S = V @ V.T if scores is None else scores
    rel, ex = relevance_from_labels(labels, labels, same_items=True)
    return evaluate(S, rel, exclude=ex)["map_at_10"]


class AspectMethod:
    name = "base"
    multi_vector = False

    def fit(self, train_docs=None, labels=None, **kw):
        return self

    def encode(self, docs, aspect: str) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def score(self, query_docs, cand_docs, aspect: str) -> np.ndarray:
        return self.encode(query_docs, aspect) @ self.encode(cand_docs, aspect).T

    def bytes_per_paper(self, docs, aspect: str) -> float:
        return float(self.encode(docs[:1], aspect).shape[1] * FLOAT32)


class GenericMethod(AspectMethod):
    """(1) Baseline: one embedding of title + ". " + abstract for every aspect."""

    name = "generic"

    def __init__(self, encoder):
        self.encoder = encoder

    def encode(self, docs, aspect: str = "any") -> np.ndarray:
        return l2n(self.encoder.encode([doc_text(d) for d in docs]))


class PromptMethod(AspectMethod):
    """(3) Aspect prefix prepended to title + abstract ("Method, model and approach ...: ...")."""

    name = "prompt"

    def __init__(self, encoder, prefixes: dict[str, str] | None = None):
        self.encoder = encoder
        self.prefixes = prefixes or PREFIXES

    def encode(self, docs, aspect: str) -> np.ndarray:
        return l2n(self.encoder.encode([self.prefixes[aspect] + doc_text(d) for d in docs]))


class SentenceSelectMethod(AspectMethod):
    """(2) Rhetorical-role sentence selection.

    Each abstract sentence gets  w_cue * cue-phrase score + w_proto * cosine to the aspect's
    prototype prompts + w_pos * position prior; the top `k` sentences (kept in original order)
    represent the aspect.  mode="text": embed title (optional) + selected sentences as one
    text; mode="mean": mean of the title and selected sentence embeddings (re-uses the cached
    sentence embeddings, no extra encoder call).
    """

    def __init__(self, encoder, k: int = 2, mode: str = "mean", include_title: bool = True,
                 w_cue: float = 1.0, w_proto: float = 4.0, w_pos: float = 0.5):
        self.encoder = encoder
        self.k, self.mode, self.include_title = k, mode, include_title
        self.w_cue, self.w_proto, self.w_pos = w_cue, w_proto, w_pos
        self._proto: dict[str, np.ndarray] = {}

    @property
    def name(self):  # type: ignore[override]
        return f"sentsel-{self.mode}-k{self.k}" + ("" if self.include_title else "-notitle")

    def prototype(self, aspect: str) -> np.ndarray:
        if aspect not in self._proto:
            self._proto[aspect] = l2n(self.encoder.encode(PROTOTYPES[aspect]).mean(axis=0))
        return self._proto[aspect]

    def _sentences(self, docs):
        sents = [split_sentences(d["abstract"]) or [normalize_ws(d["title"])] for d in docs]
        flat = [s for ss in sents for s in ss]
        E = l2n(self.encoder.encode(flat)) if flat else np.zeros((0, 1), np.float32)
        out, i = [], 0
        for ss in sents:
            out.append((ss, E[i : i + len(ss)]))
            i += len(ss)
        return out

    def sentence_scores(self, sents: list[str], E: np.ndarray, aspect: str) -> np.ndarray:
        proto = self.prototype(aspect)
        n = len(sents)
        return np.array([
            self.w_cue * cue_score(s, aspect) + self.w_proto * float(E[i] @ proto)
            + self.w_pos * position_prior(i, n, aspect)
            for i, s in enumerate(sents)
        ])

    def _select_idx(self, sents, E, aspect, k=None) -> list[int]:
        k = k or self.k
        sc = self.sentence_scores(sents, E, aspect)
        return sorted(np.argsort(-sc, kind="stable")[:k].tolist())

    def select(self, docs, aspect: str, k: int | None = None) -> list[list[str]]:
        """The selected sentences per doc (original order)."""
        return [[ss[i] for i in self._select_idx(ss, E, aspect, k)] for ss, E in self._sentences(docs)]

    def selected_vectors(self, docs, aspect: str) -> list[np.ndarray]:
        """Per doc: (m, d) vectors of the title (if included) + selected sentences."""
        parsed = self._sentences(docs)
        titles = l2n(self.encoder.encode([normalize_ws(d["title"]) for d in docs])) if self.include_title else None
        out = []
        for j, (ss, E) in enumerate(parsed):
            idx = self._select_idx(ss, E, aspect)
            V = E[idx]
            if titles is not None:
                V = np.vstack([titles[j : j + 1], V])
            out.append(V)
        return out

    def encode(self, docs, aspect: str) -> np.ndarray:
        if self.mode == "text":
            parsed = self._sentences(docs)
            texts = []
            for d, (ss, E) in zip(docs, parsed, strict=True):
                sel = " ".join(ss[i] for i in self._select_idx(ss, E, aspect))
                texts.append((normalize_ws(d["title"]) + ". " + sel) if self.include_title else sel)
            return l2n(self.encoder.encode(texts))
        return l2n(np.stack([V.mean(axis=0) for V in self.selected_vectors(docs, aspect)]))


class MaxSimMethod(AspectMethod):
    """(6) Sentence-level late interaction over the aspect-selected sentences (+ title).

    score(q, c) = 1/2 (mean_i max_j cos(q_i, c_j) + mean_j max_i cos(q_i, c_j)).
    Stores one vector per selected sentence.
    """

    multi_vector = True

    def __init__(self, selector: SentenceSelectMethod):
        self.selector = selector

    @property
    def name(self):  # type: ignore[override]
        return f"maxsim-k{self.selector.k}"

    def encode(self, docs, aspect):
        raise TypeError("MaxSim is multi-vector; use score() or multi_encode()")

    def multi_encode(self, docs, aspect) -> list[np.ndarray]:
        return self.selector.selected_vectors(docs, aspect)

    def score(self, query_docs, cand_docs, aspect: str) -> np.ndarray:
        Q = self.multi_encode(query_docs, aspect)
        C = Q if query_docs is cand_docs else self.multi_encode(cand_docs, aspect)
        qa, qo = np.vstack(Q), np.repeat(np.arange(len(Q)), [len(v) for v in Q])
        ca, co = np.vstack(C), np.repeat(np.arange(len(C)), [len(v) for v in C])
        S = qa @ ca.T  # (sum q sentences, sum c sentences)
        # max over candidate sentences per (query sentence, candidate doc)
        c_starts = np.r_[0, np.cumsum([len(v) for v in C])[:-1]]
        q_starts = np.r_[0, np.cumsum([len(v) for v in Q])[:-1]]
        max_q = np.maximum.reduceat(S, c_starts, axis=1)  # (sum q sents, n_c)
        max_c = np.maximum.reduceat(S, q_starts, axis=0)  # (n_q, sum c sents)
        q_side = np.add.reduceat(max_q, q_starts, axis=0) / np.bincount(qo)[:, None]
        c_side = np.add.reduceat(max_c, c_starts, axis=1) / np.bincount(co)[None, :]
        return 0.5 * (q_side + c_side)

    def bytes_per_paper(self, docs, aspect: str) -> float:
        V = self.multi_encode(docs, aspect)
        return float(np.mean([v.shape[0] * v.shape[1] * FLOAT32 for v in V]))


class AdapterMethod(AspectMethod):
    """(4) Per-aspect linear adapter (identity-initialised 384x384 or low-rank residual) on the
    frozen vectors of `base` (generic by default), trained with in-batch contrastive loss on
    train pairs sharing an aspect label; best epoch picked on a validation split."""

    def __init__(self, base: AspectMethod, rank: int | None = None, epochs: int = 40, lr: float = 2e-3,
                 batch_size: int = 64, scale: float = 20.0, reg: float = 0.0, seed: int = 0,
                 time_limit_s: float = 110.0, label: str | None = None):
        self.base = base
        self.kw = {"rank": rank, "epochs": epochs, "lr": lr, "batch_size": batch_size, "scale": scale,
                   "reg": reg, "seed": seed, "time_limit_s": time_limit_s}
        self.W: dict[str, np.ndarray] = {}
        self.info: dict[str, dict] = {}
        self._label = label

    @property
    def name(self):  # type: ignore[override]
        if self._label:
            return self._label
        r = "full" if self.kw["rank"] is None else f"r{self.kw['rank']}"
        return f"adapter-{r}({self.base.name})"

    def fit(self, train_docs=None, labels=None, *, aspects=None, val_docs=None, val_labels=None,
            base_aspect: dict[str, str] | None = None, log=None, **kw):
        """labels / val_labels: {aspect: [set, ...]} aligned with train_docs / val_docs.
        base_aspect maps an aspect to the aspect under which `base` encodes (default same)."""
        for aspect in aspects or list(labels):
            ba = (base_aspect or {}).get(aspect, aspect)
            X = self.base.encode(train_docs, ba)
            val = None
            if val_docs is not None and val_labels is not None:
                val = (self.base.encode(val_docs, ba), val_labels[aspect])
            W, info = train_adapter(
                X, labels[aspect], val=val,
                val_fn=(lambda W, Xv, lv: self_retrieval_map(apply_adapter(Xv, W), lv)) if val else None,
                log=log, **self.kw,
            )
            self.W[aspect], self.info[aspect] = W, info
            self._base_aspect = base_aspect or {}
        return self

    def encode(self, docs, aspect: str) -> np.ndarray:
        ba = getattr(self, "_base_aspect", {}).get(aspect, aspect)
        return apply_adapter(self.base.encode(docs, ba), self.W.get(aspect))


class MixtureMethod(AspectMethod):
    """(5) alpha * aspect + (1 - alpha) * generic.  Vector methods mix (then re-normalise) the
    vectors, so one 384-d vector per paper and aspect is stored; multi-vector methods mix the
    scores.  `fit_alpha` picks alpha per aspect on a validation split (never test)."""

    def __init__(self, aspect_method: AspectMethod, generic: AspectMethod, alpha: float | dict = 0.5):
        self.a, self.g = aspect_method, generic
        self.alpha: dict[str, float] = alpha if isinstance(alpha, dict) else {}
        self.default_alpha = 0.5 if isinstance(alpha, dict) else float(alpha)
        self.val_curve: dict[str, list] = {}

    @property
    def name(self):  # type: ignore[override]
        return f"mix({self.a.name})"

    def _alpha(self, aspect):
        return self.alpha.get(aspect, self.default_alpha)

    def fit_alpha(self, val_docs, val_labels: Sequence[set], aspect: str,
                  grid=(0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)) -> float:
        G = self.g.encode(val_docs, aspect)
        Sg = G @ G.T
        if self.a.multi_vector:
            Sa = self.a.score(val_docs, val_docs, aspect)
            curve = [(al, self_retrieval_map(None, val_labels, scores=al * Sa + (1 - al) * Sg)) for al in grid]
        else:
            A = self.a.encode(val_docs, aspect)
            curve = [(al, self_retrieval_map(l2n(al * A + (1 - al) * G), val_labels)) for al in grid]
        best = max(curve, key=lambda t: (t[1], -abs(t[0] - 0.5)))
        self.alpha[aspect] = float(best[0])
        self.val_curve[aspect] = curve
        return self.alpha[aspect]

    def encode(self, docs, aspect: str) -> np.ndarray:
        al = self._alpha(aspect)
        return l2n(al * self.a.encode(docs, aspect) + (1 - al) * self.g.encode(docs, aspect))

    def score(self, query_docs, cand_docs, aspect: str) -> np.ndarray:
        if not self.a.multi_vector:
            return super().score(query_docs, cand_docs, aspect)
        al = self._alpha(aspect)
        Sg = self.g.encode(query_docs, aspect) @ self.g.encode(cand_docs, aspect).T
        return al * self.a.score(query_docs, cand_docs, aspect) + (1 - al) * Sg

    def bytes_per_paper(self, docs, aspect: str) -> float:
        if self.a.multi_vector:
            return self.a.bytes_per_paper(docs, aspect) + self.g.bytes_per_paper(docs, aspect)
        return super().bytes_per_paper(docs, aspect)


def train_mix(generic, aspect, tr_docs, tr_labels, va_docs, va_labels):
    """(docs -> vectors, info): a full adapter trained on the train docs (epoch picked on the
    validation docs), mixed with the generic vector at the alpha validation picks; the way the
    shipped artifact is made, repeated where the artifact saw the test papers (SciREX folds)."""
    adapter = AdapterMethod(generic, rank=None, epochs=30, lr=2e-3, batch_size=64, scale=20.0,
                            time_limit_s=110.0, label="adapter-full")
    adapter.fit(tr_docs, {aspect: tr_labels}, aspects=[aspect], val_docs=va_docs,
                val_labels={aspect: va_labels})
    mix = MixtureMethod(adapter, generic)
    alpha = mix.fit_alpha(va_docs, va_labels, aspect)
    info = {"alpha": alpha, "best_epoch": adapter.info[aspect]["best_epoch"],
            "epochs_run": len(adapter.info[aspect]["losses"])}
    return (lambda docs: mix.encode(docs, aspect)), info


def adapter_mix(generic, artifact, aspect, docs, labels, tr, va, log=None):
    """(docs -> vectors, info): the shipped adapter mix of this aspect, or one trained on the
    pwc train split the same way (train_mix) when the artifact has none (area)."""
    if aspect in artifact.adapters:
        return (lambda d: artifact.apply(aspect, generic.encode(d))), {"shipped": artifact.version}
    if log:
        log(f"pwc/{aspect}: no shipped adapter, training one on pwc train")
    return train_mix(generic, aspect, [docs[i] for i in tr], [labels[i] for i in tr],
                     [docs[i] for i in va], [labels[i] for i in va])
