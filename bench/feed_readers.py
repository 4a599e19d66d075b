"""The simulated readers of `bench feed`: who they are, what their library is, what is new.

Every set is a corpus (titles, abstracts, generic MiniLM vectors), a pool of *new* papers (the
feed's candidates) and readers, each with a history (the library is its first k papers) and the
papers that are relevant to them. Library papers are never candidates.

- pwc-tasks: a reader is a task. There are no dates, so the cut is the seeded pwc split
  (bench.common.pwc_split, seed 13): its *test* 20% are the "after" papers — the only pwc papers
  the shipped task adapter never saw — and the pool is all of them (525); the library is k of the
  task's other papers (seeded order), relevant = the task's "after" papers.
- arxiv-daily: deduplicated on id, first day = first-seen date; the window of new papers is
  everything first seen from WINDOW_START (2026-05-01, the last 9 weeks: 14.3k papers). A reader
  is an author name (as given) with >= 6 papers, >= 3 of them before the window and >= 3 in it:
  the library is the k most recent before it, relevant = the ones in it. (The halves are cut at
  the window, not at each author's median paper, so that all readers share one "now" and one
  pool, as a feed does.)
- specter-sample: a reader is one of the 20 query papers (not in the 379 papers themselves);
  its reading list is its citation neighbourhood in data.json (cited, count 5, and cited by a
  cited paper, count 1); the library is k of it (seeded order), relevant = the rest, ranked
  among all 379 papers. All 20 are test readers: too few to split, and no constant is chosen
  on them.
"""

from __future__ import annotations

import glob
import gzip
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import (
    ARXIV_DAILY,
    ARXIV_MINILM,
    PWC,
    SEED,
    SPECTER,
    docs_of,
    feed_reader_split,
    pwc_split,
    read_jsonl,
)
from bench.encoders import l2n

WINDOW_START = "2026-05-01"
MIN_AUTHOR_PAPERS, MIN_SIDE = 6, 3


@dataclass
class Reader:
    name: str
    history: list[int]  # corpus rows; the library of size k is history[:k]
    relevant: set[int]  # corpus rows (library rows are taken out at evaluation)
    split: str  # "val" | "test"


@dataclass
class ReaderSet:
    name: str
    docs: list[dict]  # {"title", "abstract"} per corpus row
    generic: np.ndarray  # (N, 384) float32, unit rows
    pool: np.ndarray  # corpus rows of the new papers
    readers: list[Reader]

    def eligible(self, size: int, split: str, limit: int | None) -> list[Reader]:
        """The split's readers with a library of `size` and something left to find, at most
        `limit` of them (a seeded sample per size)."""
        pool = set(self.pool.tolist())
        out = [r for r in self.readers if r.split == split and len(r.history) >= size
               and (r.relevant & pool) - set(r.history[:size])]
        if limit is not None and len(out) > limit:
            pick = np.random.default_rng([SEED, size]).choice(len(out), limit, replace=False)
            out = [out[i] for i in sorted(pick)]
        return out


def _generic(docs: list[dict]) -> np.ndarray:
    from bench.aspect_methods import GenericMethod
    from bench.encoders import CachedEncoder, MiniLMEncoder

    return GenericMethod(CachedEncoder(MiniLMEncoder())).encode(docs)


def pwc_readers() -> ReaderSet:
    rows = read_jsonl(PWC)
    _, _, after = pwc_split(len(rows), SEED)
    new = set(after.tolist())
    tasks: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        tasks[row["task"]].append(i)
    split = feed_reader_split(tasks)
    rng = np.random.default_rng(SEED)
    readers = []
    for task in sorted(tasks):
        before = [i for i in tasks[task] if i not in new]
        readers.append(Reader(task, [before[j] for j in rng.permutation(len(before))],
                              {i for i in tasks[task] if i in new}, split[task]))
    docs = docs_of(rows)
    return ReaderSet("pwc-tasks", docs, _generic(docs), np.sort(after), readers)


def _arxiv_rows() -> tuple[list[dict], list[str]]:
    seen: dict[str, dict] = {}
    days: list[str] = []
    for path in sorted(glob.glob(str(ARXIV_DAILY / "*.jsonl.gz"))):
        day = Path(path).name[:10]
        with gzip.open(path, "rt") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    if row["id"] not in seen:  # first day seen = the paper's date
                        seen[row["id"]] = row
                        days.append(day)
    return list(seen.values()), days


def arxiv_readers() -> ReaderSet:
    rows, days = _arxiv_rows()
    with np.load(ARXIV_MINILM) as stored:
        where = {str(i): r for r, i in enumerate(stored["ids"])}
        vectors = stored["vectors"]
        generic = l2n(vectors[[where[row["id"]] for row in rows]].astype(np.float32))
    by_author: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        for author in dict.fromkeys(row["authors"]):
            by_author[author].append(i)
    readers = []
    for author, papers in by_author.items():
        before = [i for i in papers if days[i] < WINDOW_START]
        after = {i for i in papers if days[i] >= WINDOW_START}
        if len(papers) >= MIN_AUTHOR_PAPERS and len(before) >= MIN_SIDE and len(after) >= MIN_SIDE:
            # most recent first; rows are in first-seen order, so the reverse is stable
            readers.append(Reader(author, before[::-1], after, ""))
    split = feed_reader_split([r.name for r in readers])
    for reader in readers:
        reader.split = split[reader.name]
    pool = np.array([i for i, d in enumerate(days) if d >= WINDOW_START])
    docs = [{"title": r["title"], "abstract": r["summary"]} for r in rows]
    return ReaderSet("arxiv-daily", docs, generic, pool, readers)


def specter_readers() -> ReaderSet:
    meta = json.loads((SPECTER / "metadata.json").read_text())
    links = json.loads((SPECTER / "data.json").read_text())
    ids = sorted(meta)
    row = {pid: i for i, pid in enumerate(ids)}
    rng = np.random.default_rng(SEED)
    readers = []
    for query in sorted(links):
        around = sorted(row[p] for p in links[query] if p in row)
        readers.append(Reader(query, [around[j] for j in rng.permutation(len(around))], set(around), "test"))
    docs = [{"title": meta[p]["title"] or "", "abstract": meta[p].get("abstract") or ""} for p in ids]
    return ReaderSet("specter", docs, _generic(docs), np.arange(len(ids)), readers)


READER_SETS = {"pwc-tasks": pwc_readers, "arxiv-daily": arxiv_readers, "specter": specter_readers}
