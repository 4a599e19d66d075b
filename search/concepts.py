"""Named concepts in a paper's text: the task and dataset names of the Papers with Code taxonomy.

Why: 93% of the Papers with Code evaluation papers name their task in the title or abstract
("... for semantic role labeling"), and a general-purpose embedding blurs such names into the
topic. Matching the text against a dictionary of known task and dataset names gives every
paper, labelled or not, a small set of concepts; two papers sharing a rare concept are alike on
that aspect. Nothing is trained: the dictionary is data (data/taxonomy/, written from a PwC
taxonomy export by `manage.py build_concepts`), so it covers tasks no model has seen.
Measured in `manage.py bench aspects` (docs/benchmarks.md "Named concepts").

Matching is on normalised word sequences: lower case, runs of letters and digits, a plural "s"
dropped from words longer than three letters, so "Image-Classification" and "image
classifications" both match "Image Classification". Names written with capitals inside every
word ("ImageNet", "SQuAD", "GAP") are matched as written; one-word names written plainly
("Retrieval", "News") not at all, they are ordinary words in an abstract. A parenthesised
acronym ending a name is an alias ("Visual Question Answering (VQA)" is also matched by
"VQA"); spellings and leaderboard variants of a name are one concept. Overlapping matches all
count: "3d human pose estimation" also names "Pose Estimation", its parent task, which is how
papers on sibling tasks come out related.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

KINDS = ("task", "dataset")
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_PAREN = re.compile(r"\(([^)]*)\)")
MIN_LETTERS = 3  # "3D", "GO", "MT", "16k" alone are too ambiguous to count as names
LONG_WORD = 4  # a name matched in any case needs one word this long ("is-a" would match "is a")
MAX_PER_PAPER = 50  # a safety cap on pathological texts; papers average 2-3 concepts


def _fold(token: str) -> str:
    low = token.lower()
    return low[:-1] if len(low) > 3 and low.endswith("s") and not low.endswith("ss") else low


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def words(text: str) -> tuple[str, ...]:
    return tuple(_fold(t) for t in tokens(text))


def is_styled(name: str) -> bool:
    """Every word written with capitals inside ("ImageNet", "SQuAD", "IS-A", "GAP"): matched as
    written, so the dataset "GAP" is not every "gap". Names with ordinary words ("3D Object
    Detection", "COCO test-dev") are matched in any case."""
    lettered = [t for t in tokens(name) if any(ch.isalpha() for ch in t)]
    return bool(lettered) and all(any(ch.isupper() for ch in t[1:]) for t in lettered)


def _acronym(inner: str, name: str) -> bool:
    """"Visual Question Answering (VQA)": an alias (it ends the name and starts with the name's
    first letter); "(Zero-Shot)", "(Large)", "Webcam (RGB) image classification": qualifiers."""
    t = inner.strip()
    if not (name.rstrip().endswith(f"({inner})") and t[:1].lower() == name.lstrip()[:1].lower()):
        return False
    letters = [ch for ch in t if ch.isalpha()]
    upper = sum(ch.isupper() for ch in letters)
    return " " not in t and upper >= 2 and 2 * upper >= len(letters)


def name_variants(name: str) -> set[tuple[bool, tuple[str, ...]]]:
    """(matched as written?, word sequence) pairs a name is matched by: the name without
    anything in brackets, and its acronym ("Visual Question Answering (VQA)": also "VQA")."""
    out = {_PAREN.sub(" ", name)} | {m for m in _PAREN.findall(name) if _acronym(m, name)}
    variants = set()
    for text in out:
        styled = is_styled(text)
        seq = tuple(tokens(text)) if styled else words(text)
        if sum(ch.isalpha() for w in seq for ch in w) < MIN_LETTERS:
            continue
        if styled or any(len(w) >= LONG_WORD for w in seq):
            variants.add((styled, seq))
    return variants


def kind_of(concept: str) -> str:
    return concept.split(":", 1)[0]


def name_of(concept: str) -> str:
    return concept.split(":", 1)[1]


def _key(name: str) -> tuple[str, ...]:
    """Names that are one concept: "Reinforcement Learning", "reinforcement-learning",
    "Reinforcement Learning (RL)" all have the key ("reinforcement", "learning"); so have a
    task's leaderboard variants ("Natural Language Inference (Zero-Shot)")."""
    return words(_PAREN.sub(" ", name))


def _display(names: Iterable[str]) -> str:
    # "Reinforcement Learning (RL)" over "Reinforcement Learning" over "reinforcement-learning",
    # and any of them over a qualified variant ("... (Zero-Shot)")
    def rank(n: str):
        brackets = _PAREN.findall(n)
        qualified = any(not _acronym(b, n) for b in brackets)
        return (not qualified, any(c.isupper() for c in n), bool(brackets), -len(n), n)
    return max(names, key=rank)


class Dictionary(NamedTuple):
    """Word sequence -> the concepts ("task:Object Detection") it names, one table for names
    matched as written and one for names matched in any case; version = content hash."""

    exact: dict[tuple[str, ...], frozenset[str]]
    folded: dict[tuple[str, ...], frozenset[str]]
    max_words: dict[str, int]  # longest name starting with a token (either table's form)
    version: str

    @classmethod
    def from_names(cls, names: Iterable[tuple[str, str]], single_words: bool = False) -> Dictionary:
        """single_words: also match one-word names written plainly ("Retrieval", "News",
        "model"); off, as it lowered pwc validation MAP@10 of concepts alone 0.636 -> 0.595."""
        pairs = sorted(set(names))
        groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for kind, name in pairs:
            groups.setdefault((kind, _key(name)), []).append(name)
        concept = {(kind, name): f"{kind}:{_display(group)}"
                   for (kind, _), group in groups.items() for name in group}
        # An acronym listed on its own ("NER") is the concept it abbreviates, if one does.
        aliases = {(kind, inner.strip()): concept[(kind, name)] for kind, name in pairs
                   for inner in _PAREN.findall(name) if _acronym(inner, name)}
        tables: dict[bool, dict[tuple[str, ...], set[str]]] = {True: {}, False: {}}
        for kind, name in pairs:
            target = aliases.get((kind, name.strip()), concept[(kind, name)])
            for styled, seq in name_variants(name):
                if len(seq) == 1 and not styled and not single_words:
                    continue
                tables[styled].setdefault(seq, set()).add(target)
        frozen = {s: {k: frozenset(v) for k, v in t.items()} for s, t in tables.items()}
        longest: dict[str, int] = {}
        for seq in (*frozen[True], *frozen[False]):
            longest[seq[0]] = max(longest.get(seq[0], 0), len(seq))
        version = hashlib.sha1(json.dumps([pairs, single_words]).encode()).hexdigest()[:12]
        return cls(frozen[True], frozen[False], longest, version)

    def extract(self, text: str) -> list[str]:
        """Every concept whose name occurs in the text (overlapping matches too), sorted."""
        raw = tokens(text)
        folded = [_fold(t) for t in raw]
        found: set[str] = set()
        for i in range(len(raw)):
            longest = max(self.max_words.get(raw[i], 0), self.max_words.get(folded[i], 0))
            for n in range(1, min(longest, len(raw) - i) + 1):
                hit = self.exact.get(tuple(raw[i:i + n]))
                if hit:
                    found |= hit
                hit = self.folded.get(tuple(folded[i:i + n]))
                if hit:
                    found |= hit
        return sorted(found)[:MAX_PER_PAPER]


def found_in(title: str, abstract: str) -> tuple[list[str], str]:
    """A paper's concepts and the version of the dictionary that found them (one read of it,
    so the two always agree, even when the file changes meanwhile)."""
    dictionary = shipped_dictionary()
    return dictionary.extract(f"{title} . {abstract}"), dictionary.version


def paper_concepts(title: str, abstract: str) -> list[str]:
    return found_in(title, abstract)[0]


def shipped_dictionary() -> Dictionary:
    """The dictionary at settings.CONCEPT_DICTIONARY, read again when the file changes, so a
    long-running worker never writes concepts of an edited dictionary's predecessor."""
    from django.conf import settings

    path = Path(settings.CONCEPT_DICTIONARY)
    stat = path.stat()
    return _read_cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2)
def _read_cached(path: str, mtime_ns: int, size: int) -> Dictionary:
    return read_dictionary(Path(path))


def read_dictionary(path: Path) -> Dictionary:
    """A dictionary file: `kind<TAB>name` lines; `#` lines are comments (source, license)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            kind, _, name = line.partition("\t")
            if kind in KINDS and name.strip():
                rows.append((kind, name.strip()))
    return Dictionary.from_names(rows)


def read_taxonomy(folder: Path) -> list[tuple[str, str]]:
    """(kind, name) pairs from a Papers with Code taxonomy export (../shared/data/pwc-taxonomy):
    task names from the task lists, hierarchies and subtask columns; dataset names from the
    common-dataset and benchmark columns (a benchmark like "COCO test-dev" is kept whole)."""
    tasks: set[str] = set()
    datasets: set[str] = set()

    def split(cell):  # "a; b; c..." lists, the last item of a truncated one dropped
        return [x.strip() for x in (cell or "").split(";") if x.strip() and not x.strip().endswith("...")]

    for path in sorted(folder.rglob("*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                for column in ("Task Name", "Parent Task", "Subtasks", "Child Tasks"):
                    tasks.update(t for t in split(row.get(column)) if "deleted task" not in t)
                for column in ("Common Datasets (Top 10)", "Benchmarks"):
                    datasets.update(split(row.get(column)))

    def walk(node):
        if "deleted task" not in node["name"]:
            tasks.add(node["name"].strip())
        for child in node.get("children", []):
            walk(child)

    for path in sorted(folder.rglob("*.json")):
        for node in json.loads(path.read_text(encoding="utf-8")).get("hierarchical_tasks", []):
            walk(node)
    return [("task", t) for t in sorted(tasks) if t] + [("dataset", d) for d in sorted(datasets) if d]


# --- comparing concept sets -------------------------------------------------------------------

def idf(document_frequency: int, papers: int) -> float:
    """Smoothed idf, as scikit-learn's: concepts in every paper still weigh 1."""
    return math.log((1 + papers) / (1 + document_frequency)) + 1.0


def weighted(concepts: Iterable[str], weights: Mapping[str, float],
             kinds: Sequence[str] = KINDS) -> dict[str, float]:
    """The concepts of the given kinds as an l2-normalised idf vector (unknown concepts weigh
    as the rarest)."""
    top = max(weights.values(), default=1.0)
    vec = {c: weights.get(c, top) for c in concepts if kind_of(c) in kinds}
    norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
    return {c: v / norm for c, v in vec.items()}


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum((v * b[c] for c, v in a.items() if c in b), 0.0)


def shared(a: Mapping[str, float], b: Mapping[str, float], limit: int = 5) -> list[str]:
    """Concepts of both, rarest (most telling) first."""
    return sorted((c for c in a if c in b), key=lambda c: (-a[c] * b[c], c))[:limit]


class ConceptIndex(NamedTuple):
    """Concept sets of a pool of papers with idf from the pool itself (benchmarks)."""

    sets: list[Sequence[str]]
    idf: dict[str, float]

    @classmethod
    def fit(cls, sets: Sequence[Sequence[str]]) -> ConceptIndex:
        df: dict[str, int] = {}
        for s in sets:
            for c in set(s):
                df[c] = df.get(c, 0) + 1
        return cls(list(sets), {c: idf(d, len(sets)) for c, d in df.items()})

    def matrix(self, kinds: Sequence[str] = KINDS):
        """(papers x concepts) l2-normalised idf rows (scipy CSR) of the chosen kinds."""
        from scipy.sparse import csr_matrix

        columns: dict[str, int] = {}
        data, indices, indptr = [], [], [0]
        for s in self.sets:
            for c, v in weighted(s, self.idf, kinds).items():
                indices.append(columns.setdefault(c, len(columns)))
                data.append(v)
            indptr.append(len(indices))
        return csr_matrix((data, indices, indptr), shape=(len(self.sets), max(len(columns), 1)))
