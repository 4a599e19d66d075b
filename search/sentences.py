"""Abstract sentences and the rhetorical-role cues that pick the ones stating an aspect
(the evidence shown beside "similar by task / method / dataset")."""

from __future__ import annotations

import re

_ABBREV = ("e.g.", "i.e.", "et al.", "etc.", "vs.", "cf.", "Fig.", "Eq.", "resp.", "approx.", "No.")


def normalize_ws(text: str) -> str:
    return " ".join((text or "").split())



def split_sentences(text: str, min_chars: int = 12) -> list[str]:
    """Split an abstract into sentences (rule based: ., !, ? followed by space + capital/digit)."""
    text = normalize_ws(text)
    if not text:
        return []
    protected = text
    for i, ab in enumerate(_ABBREV):
        protected = protected.replace(ab, ab.replace(".", f"\x00{i}\x00"))
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])", protected)
    out: list[str] = []
    for p in parts:
        p = re.sub(r"\x00\d+\x00", ".", p).strip()
        if not p:
            continue
        if out and len(p) < min_chars:  # glue fragments to the previous sentence
            out[-1] = out[-1] + " " + p
        else:
            out.append(p)
    return out


# Cue phrases per rhetorical role (regex, weight).  Matched case-insensitively on a sentence.
CUES: dict[str, list[tuple[str, float]]] = {
    "task": [
        (r"\b(the )?(problem|task|challenge) of\b", 1.0),
        (r"\bwe (address|study|tackle|consider|investigate|focus on)\b", 1.0),
        (r"\b(is|remains) an? (important|fundamental|challenging|key|open|long-standing|active)\b", 1.0),
        (r"\b(aims?|goal) (to|is)\b", 0.5),
        (r"\b(task|problem)s?\b", 0.5),
        (r"\bapplications?\b", 0.3),
    ],
    "method": [
        (r"\bwe (propose|present|introduce|develop|design|describe)\b", 1.5),
        (r"\bin this (paper|work)\b", 0.5),
        (r"\b(our|the proposed|a novel|a new) "
         r"(model|method|approach|architecture|framework|network|algorithm|technique|system)\b", 1.5),
        (r"\b(model|method|approach|architecture|framework|network|algorithm|module|mechanism|layer|loss)s?\b", 0.5),
        (r"\b(based on|consists of|composed of|leverag\w+|employ\w*|us(e|es|ing))\b", 0.3),
    ],
    "dataset": [
        (r"\b(data ?sets?|benchmarks?|corpus|corpora|treebank)\b", 1.5),
        (r"\b(experiments?|evaluat\w+|results?|tested|test) (on|with|over)\b", 1.0),
        (r"\b(state[- ]of[- ]the[- ]art|outperform\w*|achiev\w+|accuracy|F1|BLEU|mAP|mIoU|error rate)\b", 0.5),
        (r"\d+(\.\d+)?\s?%", 0.5),
        (r"\b([A-Z][A-Za-z]*[0-9]+[A-Za-z0-9-]*|[A-Z]{3,}[A-Za-z0-9-]*)\b", 0.3),  # CIFAR-10, SNLI, COCO
    ],
}


# The evaluation's "area" (research field) aspect reads like a coarse task.
_CUES_OF = {"area": "task"}


def cue_score(sentence: str, aspect: str) -> float:
    total = 0.0
    for pattern, w in CUES[_CUES_OF.get(aspect, aspect)]:
        flags = 0 if pattern.startswith(r"\b([A-Z]") else re.IGNORECASE
        if re.search(pattern, sentence, flags):
            total += w
    return total


def position_prior(i: int, n: int, aspect: str) -> float:
    """Abstracts open with the task, propose the method in the middle, report data at the end."""
    if n <= 1:
        return 0.0
    rel = i / (n - 1)
    if _CUES_OF.get(aspect, aspect) == "task":
        return 1.0 - rel
    if aspect == "dataset":
        return rel
    return 1.0 - abs(rel - 0.4) * 2  # method: peaks at ~40% of the abstract
