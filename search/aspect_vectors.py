"""How a paper's aspect vectors (task / method / dataset) are computed, for papers with or
without labels. Called by the embedding workers (search.services.papers_embed).

Chosen by measurement (`manage.py bench aspects-adapters`, docs/benchmarks.md "Aspect vectors"): a learned
linear adapter applied to the generic vector, mixed back with it (search.adapters). Of the
candidates, only the adapter beat the generic embedding; sentence selection, prompts and
MaxSim did not. For aspects without a measured gain (method) the vector is the generic one.
Because the adapter works on the generic vector, aspect vectors cost a matrix product, not
another pass of the encoder.

The "why" shown to users comes from rhetorical-role sentence selection without embeddings:
cue phrases ("we propose", "experiments on ... dataset") and position in the abstract.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from search import adapters
from search.embedders import Encoder
from search.sentences import CUES, cue_score, position_prior, split_sentences

# The sentence evidence and the vector recipe; part of the aspect spaces' version together
# with the adapter artifact's version.
METHOD_VERSION = "adapter-mix-v1"
EVIDENCE_SENTENCES = 2


def method_version(encoder: Encoder) -> str:
    artifact = adapters.current(encoder)
    return f"{METHOD_VERSION}+{artifact.version if artifact else 'generic'}"


def evidence_sentences(abstract: str, aspect: str, k: int = EVIDENCE_SENTENCES) -> list[str]:
    """The abstract's sentences that most look like they state this aspect."""
    sentences = split_sentences(abstract)
    if aspect not in CUES or not sentences:
        return sentences[:1]
    scores = [cue_score(s, aspect) + 0.5 * position_prior(i, len(sentences), aspect)
              for i, s in enumerate(sentences)]
    best = sorted(np.argsort(-np.asarray(scores), kind="stable")[:k].tolist())
    return [sentences[i] for i in best]


def aspect_vectors(
    *, encoder: Encoder, papers: Sequence[tuple[str, str]], generic: np.ndarray,
    aspects: Sequence[str],
) -> dict[str, tuple[np.ndarray, list[list[str]]]]:
    """Per aspect: L2-normalised vectors (rows follow `papers`) and each paper's evidence."""
    artifact = adapters.current(encoder)
    out: dict[str, tuple[np.ndarray, list[list[str]]]] = {}
    for aspect in aspects:
        vectors = artifact.apply(aspect, generic) if artifact else generic
        evidence = [evidence_sentences(abstract, aspect) for _, abstract in papers]
        out[aspect] = (np.asarray(vectors, dtype=np.float32), evidence)
    return out
