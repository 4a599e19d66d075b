"""Research-only text helpers of the aspect evaluation: prototypes, prompt prefixes, the "area"
aspect. The shipped sentence splitting and cues live in search.sentences."""

from __future__ import annotations

from search.sentences import CUES, cue_score, normalize_ws, position_prior, split_sentences

__all__ = ["CUES", "PREFIXES", "PROTOTYPES", "cue_score", "doc_text", "normalize_ws",
           "position_prior", "split_sentences"]


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


