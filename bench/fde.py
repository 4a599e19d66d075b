"""Facet FDEs (MUVERA) vs brute-force MaxSim, their storage, and the ingest cost of sentences
(docs/benchmarks.md "Sentence vectors and facet FDEs").

On the loaded corpus (the demo's 4.3k papers unless more are loaded):
1. fills every paper's sentences through the worker's service (search.services.sentences),
   timing the fill;
2. the ingest cost side by side, in interleaved rounds on one sample, each inside a rolled-back
   transaction into throw-away spaces: today's embedding work (generic, and generic + the
   configured aspects) vs the same plus the sentences (split, encode, roles, FDEs, writes);
   papers/s and CPU-ms a paper (process CPU time: load-independent, the encoder's threads
   included);
3. recall: for sampled query papers and each facet, brute-force MaxSim top-10 over the whole
   corpus (query facet sentences vs each paper's facet sentences) against (a) the FDE inner
   product's top N reranked by exact MaxSim, for several FDE sizes (numpy, exact inner
   product), and (b) the shipped path, `facet_candidates` (pgvector HNSW on halfvec FDEs,
   then the MaxSim rerank), with its latency;
4. bytes per paper of the stored sentences and FDEs (rows and indexes).
"""

from __future__ import annotations

import random
import statistics
import time

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from bench.demo import add_demo_arguments, run_on_demo
from search import services
from search.embedders import get_encoder
from search.models import EmbeddingSpace, Paper, PaperSentences
from search.multivector import FDE_PARAMS, FdeParams, fde_document, fde_query
from search.roles import FACETS
from search.sentence_selectors import facet_candidates, paper_sentences, sentence_space
from search.services import sentences as sentence_service

HELP = "facet FDEs: recall of brute-force MaxSim top-10, storage, ingest cost with sentences"

SIZES = {  # name -> parameters; the shipped one is FDE_PARAMS
    "k2-r8-p16 (512)": FdeParams(k_sim=2, reps=8, d_proj=16),
    "k3-r4-p16 (512)": FdeParams(k_sim=3, reps=4, d_proj=16),
    "k3-r8-p16 (1024)": FdeParams(k_sim=3, reps=8, d_proj=16),
    "k4-r8-p8 (1024)": FdeParams(k_sim=4, reps=8, d_proj=8),
    "k3-r16-p16 (2048)": FdeParams(k_sim=3, reps=16, d_proj=16),
    "k4-r10-p16 (2560)": FdeParams(k_sim=4, reps=10, d_proj=16),
}


def add_arguments(parser):
    parser.add_argument("--queries", type=int, default=150)
    parser.add_argument("--candidates", default="50,100,200,400")
    parser.add_argument("--cost-papers", type=int, default=192)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-cost", action="store_true")
    add_demo_arguments(parser)


def run(command, **options):
    run_on_demo(command, measure, options)


def measure(out, *, queries, candidates, cost_papers, rounds, skip_cost, seed, **_):
    results: dict = {"load": _load_avg()}
    results["fill"] = _fill(out)
    if not skip_cost:
        results["cost"] = _cost(out, cost_papers, rounds, seed)
    results["recall"] = _recall(out, queries, [int(c) for c in candidates.split(",")], seed)
    results["storage"] = _storage(out)
    results["load_after"] = _load_avg()
    out(f"\nload average: {results['load']} before, {results['load_after']} after")
    return results


def _load_avg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _fill(out) -> dict:
    ids = sentence_service.papers_missing_sentences_ids()
    started, cpu = time.perf_counter(), time.process_time()
    chunk = settings.EMBEDDING_TASK_CHUNK
    for start in range(0, len(ids), chunk):
        sentence_service.papers_embed_sentences(paper_ids=ids[start:start + chunk])
    wall = time.perf_counter() - started
    if ids:
        out(f"filled sentences of {len(ids)} papers in {wall:.0f} s "
            f"({len(ids) / wall:.1f} papers/s, {(time.process_time() - cpu) * 1000 / len(ids):.0f}"
            " CPU-ms a paper)")
    return {"papers": len(ids), "seconds": round(wall, 1)}


def _throwaway(encoder, aspect: str) -> EmbeddingSpace:
    return EmbeddingSpace.objects.create(
        name=f"bench-fde-{aspect}-{time.time_ns()}", model_name=encoder.name,
        model_version=f"bench-{time.time_ns()}", dimension=encoder.dimension, aspect=aspect,
        is_active=False)


def _cost(out, n: int, rounds: int, seed: int) -> dict:
    random.seed(seed)
    ids = random.sample(list(Paper.objects.values_list("pk", flat=True)), n)
    encoder = get_encoder()
    encoder.encode(["warm up"])
    chunk = settings.EMBEDDING_TASK_CHUNK
    variants = {
        "generic": (False, False), "generic + sentences": (False, True),
        "today (generic + aspects)": (True, False), "today + sentences": (True, True)}
    timings: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for _ in range(rounds):
        for name, (aspects, with_sentences) in variants.items():
            wall, cpu = time.perf_counter(), time.process_time()
            with transaction.atomic():
                spaces = [_throwaway(encoder, a)
                          for a in ["generic", *(settings.ASPECTS if aspects else [])]]
                for start in range(0, n, chunk):
                    part = ids[start:start + chunk]
                    services.papers_embed(paper_ids=part, spaces=spaces[:1])
                    if len(spaces) > 1:  # the aspect wave, as queue_embedding sends it
                        services.papers_embed(paper_ids=part, spaces=spaces[1:])
                    if with_sentences:
                        sentence_service.papers_embed_sentences(paper_ids=part, space=spaces[0])
                transaction.set_rollback(True)
            timings[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    out(f"\ningest cost, {n} papers, {rounds} interleaved rounds (median):")
    rows = {}
    for name, runs in timings.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rows[name] = {"papers_per_s": round(n / wall, 1), "cpu_ms_per_paper": round(cpu * 1000 / n, 1)}
        out(f"  {name:<28} {n / wall:7.1f} papers/s   {cpu * 1000 / n:6.1f} CPU-ms a paper")
    for base in ("generic", "today (generic + aspects)"):
        plus = "generic + sentences" if base == "generic" else "today + sentences"
        ratio = rows[plus]["cpu_ms_per_paper"] / rows[base]["cpu_ms_per_paper"]
        out(f"  {plus} / {base}: {ratio:.2f}x the CPU a paper "
            f"(throughput {rows[plus]['papers_per_s'] / rows[base]['papers_per_s']:.2f}x)")
    return rows


def _segment_maxsim(q: np.ndarray, flat: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """MaxSim of q against every document (rows concatenated in `flat`, starting at starts)."""
    best = np.maximum.reduceat(q @ flat.T, starts, axis=1)  # (m, docs)
    return best.mean(axis=0)


def _recall(out, n_queries: int, candidate_counts: list[int], seed: int) -> dict:
    space = sentence_space()
    assert space is not None
    ids = list(Paper.objects.order_by("pk").values_list("pk", flat=True))
    sets = paper_sentences(ids, space)
    docs = [i for i in ids if i in sets and len(sets[i].texts)]
    index = {pid: j for j, pid in enumerate(docs)}
    rng = random.Random(seed)
    query_ids = rng.sample(docs, min(n_queries, len(docs)))
    out(f"\nrecall of brute-force MaxSim top-10: {len(query_ids)} query papers x "
        f"{len(FACETS)} facets over {len(docs)} papers (query excluded)")
    results: dict = {}
    for facet in FACETS:
        per_doc = [sets[i].facet_vectors(facet) for i in docs]
        flat = np.concatenate(per_doc)
        starts = np.cumsum([0] + [len(v) for v in per_doc[:-1]])
        truth = {}
        for qid in query_ids:
            s = _segment_maxsim(sets[qid].facet_vectors(facet), flat, starts)
            s[index[qid]] = -np.inf
            truth[qid] = (np.argsort(-s, kind="stable")[:10], s)
        for name, params in SIZES.items():
            fdes = np.stack([fde_document(v, params) for v in per_doc]).astype(np.float16)
            fdes = fdes.astype(np.float32)
            hits: dict[int, list[float]] = {c: [] for c in [10, *candidate_counts]}
            for qid in query_ids:
                top, s = truth[qid]
                ip = fdes @ fde_query(sets[qid].facet_vectors(facet), params).astype(np.float16)
                ip[index[qid]] = -np.inf
                order = np.argsort(-ip, kind="stable")
                hits[10].append(len(set(order[:10]) & set(top)) / 10)  # FDE alone
                for c in candidate_counts:
                    cand = order[:c]
                    reranked = cand[np.argsort(-s[cand], kind="stable")[:10]]
                    hits[c].append(len(set(reranked) & set(top)) / 10)
            row = {"fde_only@10": float(np.mean(hits[10]))}
            row.update({f"rerank{c}": float(np.mean(hits[c])) for c in candidate_counts})
            results.setdefault(name, {})[facet] = row
        # the shipped path: pgvector HNSW over halfvec FDEs, then the MaxSim rerank
        latencies, recalls = [], []
        for qid in query_ids:
            started = time.perf_counter()
            got = facet_candidates(facet, sets[qid], 10, exclude_ids=[qid])
            latencies.append((time.perf_counter() - started) * 1000)
            recalls.append(len({index[g] for g in got} & set(truth[qid][0])) / 10)
        results.setdefault("shipped facet_candidates", {})[facet] = {
            f"rerank{settings.FACET_RERANK_CANDIDATES}": float(np.mean(recalls)),
            "p50_ms": float(np.median(latencies)), "p95_ms": float(np.percentile(latencies, 95))}
    out(f"  {'FDE':<20} {'facet':<11} {'FDE@10':>7} " +
        " ".join(f"{'N=' + str(c):>7}" for c in candidate_counts))
    for name, per_facet in results.items():
        for facet, row in per_facet.items():
            if "p50_ms" in row:
                out(f"  {name:<20} {facet:<11} HNSW+rerank{settings.FACET_RERANK_CANDIDATES} "
                    f"recall {row[f'rerank{settings.FACET_RERANK_CANDIDATES}']:.3f}  "
                    f"p50 {row['p50_ms']:.1f} ms  p95 {row['p95_ms']:.1f} ms")
            else:
                out(f"  {name:<20} {facet:<11} {row['fde_only@10']:7.3f} " +
                    " ".join(f"{row[f'rerank{c}']:7.3f}" for c in candidate_counts))
    out(f"  (shipped FDE parameters: {FDE_PARAMS.version}, {FDE_PARAMS.dimension} dimensions)")
    return results


def _storage(out) -> dict:
    space = sentence_space()
    assert space is not None  # the fill above wrote into it
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), avg(pg_column_size(s.*)), avg(array_length(s.texts, 1)), "
                       "max(array_length(s.texts, 1)) FROM search_papersentences s "
                       "WHERE s.space_id = %s", [space.pk])
        papers, row_bytes, sentences, most = cursor.fetchone()
        cursor.execute("SELECT count(*), avg(pg_column_size(f.*)) FROM search_paperfacetvector f "
                       "WHERE f.space_id = %s", [space.pk])
        fdes, fde_bytes = cursor.fetchone()
        cursor.execute("SELECT coalesce(sum(pg_relation_size(indexrelid)), 0) FROM pg_index i "
                       "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE %s",
                       [f"fde_{space.pk}_%"])
        index_bytes = int(cursor.fetchone()[0])
    papers = max(int(papers), 1)
    per_paper = {"sentence_row": float(row_bytes or 0), "sentences": float(sentences or 0),
                 "fde_rows": float(fde_bytes or 0) * int(fdes) / papers,
                 "fde_indexes": index_bytes / papers, "max_sentences": int(most or 0)}
    out(f"\nstorage a paper ({papers} papers, {per_paper['sentences']:.1f} sentences on average, "
        f"at most {per_paper['max_sentences']}): sentence row {per_paper['sentence_row']:.0f} B "
        f"(texts + roles + int8 vectors), {len(FACETS)} FDE rows {per_paper['fde_rows']:.0f} B, "
        f"their HNSW graphs {per_paper['fde_indexes']:.0f} B")
    generic = PaperSentences.objects.filter(space=space).count()
    per_paper["papers"] = generic
    return per_paper
