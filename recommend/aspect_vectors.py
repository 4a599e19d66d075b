"""How a paper's aspect vectors (task / method / dataset) are computed, for papers with or
without labels. Called by the embedding workers (search.services.papers_embed).

The method was chosen by `bench/aspects_eval.py` (docs/benchmarks.md, "Aspect vectors"):
rhetorical-role sentence selection — each abstract sentence is scored by cue phrases, by
similarity to the aspect's prototype sentences and by its position; the aspect part is the
mean of the title's and the selected sentences' embeddings, mixed with the generic vector
(ALPHA). The selected sentences are kept as the evidence shown in explanations. Sentences are
encoded once per paper and shared by all aspects.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from recommend.aspects.encoders import l2n
from recommend.aspects.methods import SentenceSelectMethod
from recommend.aspects.text import PROTOTYPES, normalize_ws
from search.embedders import Encoder

# Bump when the method or its parameters change: the version is part of the aspect space's
# identity, so a new version is filled in the background and switched on when complete.
METHOD_VERSION = "sentsel-mean-k2-a0.5-v1"
SENTENCES = 2
# weight of the aspect part in the final vector; the rest is the generic vector
ALPHA = {"task": 0.5, "method": 0.5, "dataset": 0.5}
SUPPORTED = tuple(PROTOTYPES)


def aspect_vectors(
    *, encoder: Encoder, papers: Sequence[tuple[str, str]], generic: np.ndarray,
    aspects: Sequence[str],
) -> dict[str, tuple[np.ndarray, list[list[str]]]]:
    """Per aspect: L2-normalised vectors (one row per paper) and each paper's evidence.

    `generic` holds the papers' generic vectors (rows in the same order), mixed in by ALPHA.
    """
    unknown = [a for a in aspects if a not in SUPPORTED]
    if unknown:
        raise ValueError(f"no sentence cues for aspect(s) {unknown}; supported: {SUPPORTED}")
    selector = SentenceSelectMethod(encoder, k=SENTENCES, mode="mean", include_title=True)
    parsed = selector._sentences([{"title": t, "abstract": a} for t, a in papers])
    titles = l2n(encoder.encode([normalize_ws(t) for t, _ in papers]))
    out: dict[str, tuple[np.ndarray, list[list[str]]]] = {}
    for aspect in aspects:
        alpha = ALPHA.get(aspect, 0.5)
        vectors, evidence = [], []
        for row, (sentences, embedded) in enumerate(parsed):
            chosen = selector._select_idx(sentences, embedded, aspect)
            part = np.vstack([titles[row:row + 1], embedded[chosen]]).mean(axis=0)
            vectors.append(alpha * l2n(part) + (1 - alpha) * generic[row])
            evidence.append([sentences[i] for i in chosen])
        out[aspect] = (l2n(np.stack(vectors)), evidence)
    return out
