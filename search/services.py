"""Writes to the corpus. The only code that creates papers or writes vectors."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from pgvector import Bit, HalfVector, Vector

from search import codes, concepts
from search.embedders import content_hash, get_encoder, paper_text
from search.ingest import PaperRecord, count_rows, read_rows
from search.models import ConceptStats, EmbeddingSpace, Job, Paper, PaperCode, PaperEmbedding

log = logging.getLogger(__name__)

MAX_JOB_ERRORS = 500
INGEST_BATCH = 500
_LABEL_FIELDS = ("authors", "categories", "venue", "tasks", "methods", "datasets", "source_url")


# --- ingestion ---------------------------------------------------------------------------------

@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # papers whose text is new or changed: their embeddings must be (re)computed
    to_embed: list[int] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (index in batch, message)


def papers_upsert(*, records: Sequence[PaperRecord]) -> UpsertResult:
    """Create or update papers, deduplicated on arXiv id and DOI, in one transaction.

    Re-ingesting identical rows changes nothing. A record whose arXiv id and DOI point at two
    different existing papers is refused (reported in `errors`), never merged silently.
    Embedding tasks for new / changed papers are queued after commit.
    """
    result = UpsertResult()
    with transaction.atomic():
        arxiv_ids = [r.arxiv_id for r in records if r.arxiv_id]
        dois = [r.doi for r in records if r.doi]
        # Lock the rows we may update so a concurrent ingest of the same file waits for us.
        existing = list(
            Paper.objects.select_for_update()
            .filter(Q(arxiv_id__in=arxiv_ids) | Q(doi__in=dois))
            .defer("search_vector")
        )
        by_arxiv = {p.arxiv_id: p for p in existing if p.arxiv_id}
        by_doi = {p.doi: p for p in existing if p.doi}
        batch_new: dict[str, Paper] = {}  # key -> paper created earlier in this batch
        to_create: list[Paper] = []
        to_update: dict[int, Paper] = {}
        for index, record in enumerate(records):
            key_candidates = [k for k in (record.arxiv_id and f"a:{record.arxiv_id}",
                                          record.doi and f"d:{record.doi}",
                                          record.source_url and f"u:{record.source_url}") if k]
            match_a = by_arxiv.get(record.arxiv_id) if record.arxiv_id else None
            match_d = by_doi.get(record.doi) if record.doi else None
            if match_a and match_d and match_a.pk != match_d.pk:
                result.errors.append((index, (
                    f"arXiv id {record.arxiv_id} and DOI {record.doi} belong to two different "
                    "papers already stored; fix the row")))
                continue
            paper = match_a or match_d
            if paper is None and not (record.arxiv_id or record.doi):
                paper = Paper.objects.filter(source_url=record.source_url).first()
            if paper is None:
                earlier = next((batch_new[k] for k in key_candidates if k in batch_new), None)
                if earlier is not None:  # the same paper twice in one batch: first one wins
                    result.unchanged += 1
                    continue
                paper = _paper_from_record(record)
                to_create.append(paper)
                for key in key_candidates:
                    batch_new[key] = paper
                continue
            if _apply_record(paper, record):
                to_update[paper.pk] = paper
            else:
                result.unchanged += 1
        if to_create:
            Paper.objects.bulk_create(to_create)
            result.created = len(to_create)
            result.to_embed.extend(p.pk for p in to_create)
        if to_update:
            changed_text = [p.pk for p in to_update.values() if p._text_changed]  # type: ignore[attr-defined]
            Paper.objects.bulk_update(
                list(to_update.values()),
                ["title", "abstract", "content_hash", "concepts", "concepts_version", "arxiv_id",
                 "doi", "published", "first_seen", "updated_at", *_LABEL_FIELDS],
            )
            result.updated = len(to_update)
            result.to_embed.extend(changed_text)
        if result.to_embed:
            ids = list(result.to_embed)
            transaction.on_commit(lambda: queue_embedding(paper_ids=ids))
    return result


# --- concepts: task and dataset names found in the text (search.concepts) ---------------------

CONCEPT_BATCH = 1000
CONCEPT_STATS_KEEP = 3


def papers_refresh_concepts(*, batch: int = CONCEPT_BATCH,
                            progress: Callable[[int], None] | None = None) -> int:
    """Find the concepts of every paper whose concepts came from another dictionary version
    (or from none: papers stored before concepts existed). Idempotent and restartable: each
    batch commits on its own, and a paper whose text changed meanwhile is left to the next
    run (the write is conditional on the text it was computed from). Returns papers written."""
    version = concepts.shipped_dictionary().version
    updated, last_id = 0, 0
    while True:
        rows = list(Paper.objects.filter(pk__gt=last_id).exclude(concepts_version=version)
                    .order_by("pk").values_list("pk", "title", "abstract", "content_hash")[:batch])
        if not rows:
            return updated
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE search_paper SET concepts = %s::varchar[], concepts_version = %s "
                "WHERE id = %s AND content_hash = %s",
                [(*concepts.found_in(title, abstract), pk, digest)
                 for pk, title, abstract, digest in rows])
            updated += max(cursor.rowcount, 0)  # psycopg 3: the sum over the statements
        last_id = rows[-1][0]
        if progress:
            progress(len(rows))


def papers_outdated_concepts_count() -> int:
    return Paper.objects.exclude(concepts_version=concepts.shipped_dictionary().version).count()


def concept_stats_needed() -> bool:
    """No count yet, a new dictionary, or the corpus has grown by a tenth since the last count."""
    latest = ConceptStats.objects.only("dictionary_version", "papers").first()
    corpus = Paper.objects.count()
    if latest is None:
        return corpus > 0
    return (latest.dictionary_version != concepts.shipped_dictionary().version
            or corpus > 1.1 * latest.papers)


def concept_stats_fit() -> ConceptStats:
    """Count the papers naming each concept (one pass over the table), keep the newest few."""
    version = concepts.shipped_dictionary().version
    with connection.cursor() as cursor:
        cursor.execute("SELECT c, count(*) FROM search_paper p, unnest(p.concepts) AS c "
                       "WHERE p.concepts_version = %s GROUP BY c", [version])
        frequencies = {str(c): int(n) for c, n in cursor.fetchall()}
    papers = Paper.objects.filter(concepts_version=version).count()
    stats = ConceptStats.objects.create(dictionary_version=version, papers=papers,
                                        frequencies=frequencies)
    keep = ConceptStats.objects.values_list("pk", flat=True)[:CONCEPT_STATS_KEEP]
    ConceptStats.objects.exclude(pk__in=list(keep)).delete()
    return stats


def _paper_from_record(record: PaperRecord) -> Paper:
    found, version = concepts.found_in(record.title, record.abstract)
    return Paper(
        arxiv_id=record.arxiv_id, doi=record.doi, source_url=record.source_url,
        title=record.title, abstract=record.abstract, authors=record.authors,
        categories=record.categories, venue=record.venue,
        published=record.published or record.first_seen,
        first_seen=record.first_seen or timezone.now().date(), tasks=record.tasks,
        methods=record.methods, datasets=record.datasets,
        content_hash=content_hash(record.title, record.abstract),
        concepts=found, concepts_version=version,
    )


def _apply_record(paper: Paper, record: PaperRecord) -> bool:
    """Update `paper` in memory from `record`; True if anything changed."""
    changed = False
    new_hash = content_hash(record.title, record.abstract)
    paper._text_changed = new_hash != paper.content_hash  # type: ignore[attr-defined]
    if paper._text_changed:  # type: ignore[attr-defined]
        paper.title, paper.abstract, paper.content_hash = record.title, record.abstract, new_hash
        paper.concepts, paper.concepts_version = concepts.found_in(record.title, record.abstract)
        changed = True
    for name in _LABEL_FIELDS:
        value = getattr(record, name)
        if value and value != getattr(paper, name):
            setattr(paper, name, value)
            changed = True
    for name in ("arxiv_id", "doi"):
        if getattr(record, name) and not getattr(paper, name):
            setattr(paper, name, getattr(record, name))
            changed = True
    if record.published and record.published != paper.published:
        paper.published = record.published
        changed = True
    # first seen is the earliest date any source listed the paper; a publication date that
    # was only derived from the first listing moves with it
    if record.first_seen and (paper.first_seen is None or record.first_seen < paper.first_seen):
        if not record.published and paper.published in (None, paper.first_seen):
            paper.published = record.first_seen
        paper.first_seen = record.first_seen
        changed = True
    if changed:
        paper.updated_at = timezone.now()
    return changed


@dataclass
class IngestReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0

    def as_stats(self) -> dict:
        return {"rows": self.rows, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "failed": self.error_count}


def papers_ingest_file(
    *, path: Path, display_name: str | None = None, report: IngestReport | None = None,
    on_progress: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Ingest one file in batches; bad rows are reported with their line, good rows go in."""
    report = report or IngestReport()
    name = display_name or path.name
    pending: list[tuple[int, PaperRecord]] = []

    def flush() -> None:
        if not pending:
            return
        records = [r for _, r in pending]
        try:
            result = papers_upsert(records=records)
        except (IntegrityError, DataError):
            # A concurrent writer inserted one of these papers between our read and our
            # insert, or one row breaks a column limit: the batch rolled back as a whole,
            # so redo it row by row and report the rows that still fail.
            result = UpsertResult()
            for index, record in enumerate(records):
                try:
                    one = papers_upsert(records=[record])
                except (IntegrityError, DataError) as exc:
                    result.errors.append((index, f"could not store: {exc}".splitlines()[0]))
                    continue
                result.created += one.created
                result.updated += one.updated
                result.unchanged += one.unchanged
                result.errors.extend((index, msg) for _, msg in one.errors)
        report.created += result.created
        report.updated += result.updated
        report.unchanged += result.unchanged
        for index, message in result.errors:
            _add_error(report, name, pending[index][0], message)
        pending.clear()
        if on_progress:
            on_progress(report)

    for row in read_rows(path):
        report.rows += 1
        if row.error is not None:
            _add_error(report, name, row.line, row.error)
        else:
            assert row.record is not None
            pending.append((row.line, row.record))
        if len(pending) >= INGEST_BATCH:
            flush()
    flush()
    return report


def _add_error(report: IngestReport, name: str, line: int, message: str) -> None:
    report.error_count += 1
    if len(report.errors) < MAX_JOB_ERRORS:
        report.errors.append({"file": name, "line": line, "message": message})


def ingest_job_create(*, path: Path, display_name: str, user=None) -> Job:
    """A queued ingestion job for an uploaded file; the task runs after commit."""
    from search.tasks import ingest_job_run

    job = Job.objects.create(
        kind=Job.Kind.INGEST, description=f"ingest {display_name}",
        params={"path": str(path), "file": display_name}, created_by=user,
    )
    ingest_job_run.delay_on_commit(job.pk)
    return job


def ingest_job_run(*, job: Job) -> Job:
    """Run an ingestion job: counts rows first (for the progress bar), then ingests."""
    path = Path(job.params["path"])
    name = job.params.get("file", path.name)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started_at=timezone.now())
    try:
        total = count_rows(path)
    except (OSError, EOFError, UnicodeDecodeError):
        total = 0
    Job.objects.filter(pk=job.pk).update(total=total)

    def save_progress(report: IngestReport) -> None:
        Job.objects.filter(pk=job.pk).update(
            processed=report.rows, stats=report.as_stats(), errors=report.errors)

    report = papers_ingest_file(path=path, display_name=name, on_progress=save_progress)
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.DONE, processed=report.rows, total=max(total, report.rows),
        stats=report.as_stats(), errors=report.errors, finished_at=timezone.now(),
        message=f"{report.created} created, {report.updated} updated, "
                f"{report.unchanged} unchanged, {report.error_count} rows rejected",
    )
    path.unlink(missing_ok=True)
    job.refresh_from_db()
    return job


# --- embedding spaces ------------------------------------------------------------------------

def space_for_model(*, model_name: str | None = None, aspect: str = "generic") -> EmbeddingSpace:
    """The space of the configured model for `aspect`, created (and indexed) on first use.

    The first space of an aspect becomes active at once; a later one (a new model, or a new
    version of the aspect method) is filled in the background and switched on by
    `space_activate_when_complete`.
    """
    encoder = get_encoder(model_name)
    version = encoder.version
    if aspect != "generic":
        from search.aspect_vectors import method_version

        version = f"{encoder.version}+{method_version(encoder)}"
    space = EmbeddingSpace.objects.filter(
        model_name=encoder.name, model_version=version, aspect=aspect).first()
    if space is None:
        slug_model = encoder.name.replace(":", "-").replace("/", "-").lower()
        with transaction.atomic():
            has_active = EmbeddingSpace.objects.filter(aspect=aspect, is_active=True).exists()
            space, _ = EmbeddingSpace.objects.get_or_create(
                model_name=encoder.name, model_version=version, aspect=aspect,
                defaults={"name": f"{slug_model}-{_short_hash(version)}-{aspect}",
                          "dimension": encoder.dimension, "is_active": not has_active},
            )
        space_ensure_indexes(space=space)
    return space


def configured_spaces() -> list[EmbeddingSpace]:
    """The generic space and one per configured aspect, for the configured model."""
    return [space_for_model(aspect=aspect) for aspect in ("generic", *settings.ASPECTS)]


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


def space_ensure_indexes(*, space: EmbeddingSpace) -> None:
    """Partial HNSW indexes for one space: cosine on the float and halfvec copies, Hamming on
    the bit copy. Partial (WHERE space_id = n) with a fixed-dimension cast, because the table
    holds spaces of different dimensions."""
    dim, sid = int(space.dimension), int(space.pk)
    statements = [
        f"CREATE INDEX IF NOT EXISTS emb_s{sid}_float_hnsw ON search_paperembedding "
        f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE space_id = {sid}",
        f"CREATE INDEX IF NOT EXISTS emb_s{sid}_half_hnsw ON search_paperembedding "
        f"USING hnsw ((embedding_half::halfvec({dim})) halfvec_cosine_ops) "
        f"WITH (m = {int(settings.HNSW_HALFVEC_M)}) WHERE space_id = {sid}",
        f"CREATE INDEX IF NOT EXISTS emb_s{sid}_bit_hnsw ON search_paperembedding "
        f"USING hnsw ((embedding_bit::bit({dim})) bit_hamming_ops) WHERE space_id = {sid}",
    ]
    with connection.cursor() as cursor:
        # Inside a transaction that already wrote rows, deferred FK checks would block
        # CREATE INDEX ("pending trigger events"): run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for sql in statements:
            cursor.execute(sql)


def space_activate_when_complete(*, aspect: str = "generic") -> EmbeddingSpace | None:
    """Switch the aspect to the configured space once every paper has a vector there."""
    target = space_for_model(aspect=aspect)
    if target.is_active:
        return target
    if papers_missing_embedding_ids(space=target, limit=1):
        return None
    with transaction.atomic():
        EmbeddingSpace.objects.filter(aspect=aspect, is_active=True).update(is_active=False)
        EmbeddingSpace.objects.filter(pk=target.pk).update(is_active=True)
    log.info("activated embedding space %s", target.name)
    return target


# --- the ternary code (search.codes) -------------------------------------------------------------

CODE_FIT_MIN = 1_000  # vectors a space needs before its thresholds are worth fitting
CODE_BATCH = 5_000


def space_code_thresholds(space: EmbeddingSpace) -> np.ndarray | None:
    """The space's current thresholds, read fresh (a long task's space object may predate
    the fit), or None before they are fitted."""
    value = (EmbeddingSpace.objects.filter(pk=space.pk)
             .values_list("code_thresholds", flat=True).first())
    return None if value is None else np.asarray(value, dtype=np.float32)


def space_code_index_exists(space: EmbeddingSpace) -> bool:
    """Whether the code graph exists (a migration may drop it for a fast rewrite)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_class WHERE relname = %s", [f"emb_s{space.pk}_code_hnsw"])
        return cursor.fetchone() is not None


def space_codes_incomplete(space: EmbeddingSpace) -> bool:
    """Whether some vector of a space with fitted thresholds lacks its code (a write that
    raced the fit, or an interrupted build)."""
    return bool(space.code_version) and PaperEmbedding.objects.filter(
        space=space, code__isnull=True).exists()


def space_build_code(*, space: EmbeddingSpace, refit: bool = False,
                     on_progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Fit the space's ternary thresholds (once, or again with `refit`), write the code of
    every vector that lacks it, and build its HNSW index. Idempotent and resumable: a crash
    leaves vectors without a code row, which the next run (or the periodic sweep) fills.

    on_progress(phase, done, total) is called as work advances.
    """
    from search.selectors import vector_from_text

    report = (on_progress or (lambda phase, done, total: None))
    sid = int(space.pk)
    if refit or space.code_thresholds is None:
        report("fit", 0, 1)
        with connection.cursor() as cursor:
            cursor.execute(  # a uniform sample; the float copy, as the writers use
                "SELECT embedding::text FROM search_paperembedding WHERE space_id = %s "
                "ORDER BY random() LIMIT %s", [sid, codes.FIT_SAMPLE])
            sample = [vector_from_text(r[0]) for r in cursor.fetchall()]
        if not sample:
            raise ValueError(f"space {space.name} has no vectors to fit a code on")
        thresholds = codes.fit_thresholds(np.stack(sample))
        with transaction.atomic():
            EmbeddingSpace.objects.filter(pk=sid).update(
                code_thresholds=thresholds.tolist(), code_version=codes.version(thresholds))
            if refit:  # old codes (and all their graphs) are meaningless under new thresholds
                from search.planner import space_indexes_like

                with connection.cursor() as cursor:
                    cursor.execute("SELECT indexname FROM pg_indexes WHERE "
                                   "tablename = 'search_papercode' AND indexname LIKE %s",
                                   [space_indexes_like(space)])
                    for (name,) in cursor.fetchall():
                        cursor.execute(f"DROP INDEX IF EXISTS {name}")
                PaperCode.objects.filter(space_id=sid).delete()
        space.refresh_from_db()
        report("fit", 1, 1)
    thresholds = np.asarray(space.code_thresholds, dtype=np.float32)
    total = PaperEmbedding.objects.filter(space_id=sid, code__isnull=True).count()
    done, after = 0, 0
    report("encode", 0, total)
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            # FOR SHARE: a writer replacing one of these vectors waits until our codes are in,
            # then rewrites or deletes the code itself, so no code outlives its vector.
            cursor.execute(
                "SELECT e.id, e.embedding::text FROM search_paperembedding e "
                "WHERE e.space_id = %s AND e.id > %s AND NOT EXISTS "
                "(SELECT 1 FROM search_papercode c WHERE c.embedding_id = e.id) "
                "ORDER BY e.id LIMIT %s FOR SHARE OF e SKIP LOCKED", [sid, after, CODE_BATCH])
            rows = cursor.fetchall()
            if not rows:
                break
            after = rows[-1][0]
            bits = codes.encode(np.stack([vector_from_text(v) for _, v in rows]), thresholds)
            # One statement per batch (a row per statement cost ~1.3 ms a row at 1M).
            cursor.execute(
                "INSERT INTO search_papercode "
                "(embedding_id, space_id, code, categories, published) "
                "SELECT t.id, %s, t.code::varbit, p.categories, p.published "
                "FROM unnest(%s::bigint[], %s::text[]) AS t(id, code) "
                "JOIN search_paperembedding e ON e.id = t.id "
                "JOIN search_paper p ON p.id = e.paper_id "
                "ON CONFLICT (embedding_id) DO NOTHING",
                [sid, [pk for pk, _ in rows], [Bit(b).to_text() for b in bits]])
        done += len(rows)
        report("encode", done, max(total, done))
    space_ensure_code_index(space=space, on_progress=report)
    slices = space_ensure_slice_indexes(space=space, on_progress=report)
    return {"space": space.name, "code_version": space.code_version, "encoded": done,
            "slice_indexes": slices}


@contextmanager
def _index_build_memory():
    """Enough memory for pgvector to build an HNSW graph in RAM: at the 64 MB default it
    finishes the graph on disk, much slower (the 1M code index had done 68% of its heap after
    11 minutes at 64 MB; docs/benchmarks.md has the in-memory build time)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW maintenance_work_mem")
        before = cursor.fetchone()[0]
        cursor.execute("SET maintenance_work_mem = %s", [settings.INDEX_BUILD_MEMORY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = %s", [before])


def space_frequent_slices(space: EmbeddingSpace) -> dict[str, str]:
    """The partial graphs a space's codes call for: {index name: extra index predicate} for
    each category, each calendar month and each category's month holding more papers than
    the planner ranks exactly.
    A filter on one of them then walks a graph of only its papers instead of skipping the
    others (docs/benchmarks.md). Generic space only: aspect spaces serve "similar" queries,
    where filters are rarer, and the graphs cost ~1.6x (categories) + ~1x (months) + ~1.6x
    (categories' months) the code index."""
    from search.planner import (
        EXACT_SCAN_MAX,
        category_index_name,
        category_literal,
        month_index_name,
        month_predicate,
    )

    if space.aspect != "generic" or not space.code_version:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c, count(*) FROM search_papercode, unnest(categories) AS c "
            "WHERE space_id = %s GROUP BY c HAVING count(*) > %s ORDER BY count(*) DESC",
            [space.pk, EXACT_SCAN_MAX])
        categories = [c for c, _ in cursor.fetchall()]
        cursor.execute(
            "SELECT date_trunc('month', published)::date AS m FROM search_papercode "
            "WHERE space_id = %s AND published IS NOT NULL GROUP BY m HAVING count(*) > %s "
            "ORDER BY m", [space.pk, EXACT_SCAN_MAX])
        months = [m for (m,) in cursor.fetchall()]
        cursor.execute(
            "SELECT c, date_trunc('month', published)::date AS m "
            "FROM search_papercode, unnest(categories) AS c "
            "WHERE space_id = %s AND published IS NOT NULL GROUP BY c, m HAVING count(*) > %s "
            "ORDER BY c, m", [space.pk, EXACT_SCAN_MAX])
        category_months = cursor.fetchall()
    wanted = {category_index_name(space, c): f"AND categories && {category_literal(c)}"
              for c in categories}
    wanted.update({month_index_name(space, m): f"AND {month_predicate(m)}" for m in months})
    wanted.update({month_index_name(space, m, c):
                   f"AND categories && {category_literal(c)} AND {month_predicate(m)}"
                   for c, m in category_months})
    return wanted


def space_ensure_slice_indexes(
    *, space: EmbeddingSpace, on_progress: Callable[[str, int, int], None] | None = None,
) -> list[str]:
    """Build the missing per-category and per-month graphs; returns the names of all of them
    (idempotent: the periodic sweep calls for it when a month or a category has grown past
    the threshold)."""
    wanted = space_frequent_slices(space)
    for done, (name, predicate) in enumerate(wanted.items()):
        if on_progress:
            on_progress("slices", done, len(wanted))
        _create_code_graph(name, space, predicate)
    if on_progress:
        on_progress("slices", len(wanted), len(wanted))
    from django.core.cache import cache

    from search.planner import vector_indexes_key

    cache.delete(vector_indexes_key())
    return list(wanted)


def space_slice_indexes_missing(space: EmbeddingSpace) -> list[str]:
    from search.planner import vector_indexes

    present = vector_indexes()
    return [name for name in space_frequent_slices(space) if name not in present]


def space_ensure_code_index(*, space: EmbeddingSpace,
                            on_progress: Callable[[str, int, int], None] | None = None) -> None:
    """The partial HNSW index (Hamming) on the ternary codes. Built after the codes are
    written: one bulk build is much faster than growing the graph row by row. Progress comes
    from pg_stat_progress_create_index, read by a second connection while the build runs."""
    if space_code_index_exists(space):
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    watcher = _IndexBuildWatcher(pid, on_progress) if on_progress else None
    try:
        _create_code_graph(f"emb_s{int(space.pk)}_code_hnsw", space)
    finally:
        if watcher:
            watcher.stop()


def _create_code_graph(name: str, space: EmbeddingSpace, predicate: str = "") -> None:
    """A partial HNSW index (Hamming) on the space's ternary codes, optionally narrowed by an
    extra predicate on the code rows."""
    dim = codes.code_bits(space.dimension, space.code_thresholds)
    with _index_build_memory(), connection.cursor() as cursor:
        # Inside a transaction that already wrote rows, deferred FK checks would block
        # CREATE INDEX ("pending trigger events"): run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON search_papercode USING hnsw "
            f"((code::bit({dim})) bit_hamming_ops) WHERE space_id = {int(space.pk)} {predicate}")


def space_code_job_create(*, space: EmbeddingSpace, refit: bool = False, user=None) -> Job:
    """A queued background job building the space's ternary code and index."""
    from search.tasks import build_space_code

    job = Job.objects.create(
        kind=Job.Kind.INDEX, description=f"ternary code + index for {space.name}",
        params={"space_id": space.pk, "refit": refit}, created_by=user)
    build_space_code.delay_on_commit(job.pk)
    return job


def space_code_job_pending(space: EmbeddingSpace) -> bool:
    return Job.objects.filter(kind=Job.Kind.INDEX, params__space_id=space.pk,
                              status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).exists()


def space_code_job_run(*, job: Job) -> Job:
    """Run a code-building job, recording each phase's progress on the job."""
    space = EmbeddingSpace.objects.filter(pk=job.params["space_id"]).first()
    if space is None:
        Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, finished_at=timezone.now(),
                                             message="the embedding space was deleted")
        return job
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started_at=timezone.now())

    def save_progress(phase: str, done: int, total: int) -> None:
        Job.objects.filter(pk=job.pk).update(processed=done, total=total,
                                             message=_CODE_PHASES.get(phase, phase))

    try:
        result = space_build_code(space=space, refit=bool(job.params.get("refit")),
                                  on_progress=save_progress)
    except ValueError as exc:  # nothing to fit on yet
        Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, message=str(exc),
                                             finished_at=timezone.now())
    else:
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.DONE, stats=result, finished_at=timezone.now(),
            processed=result["encoded"], total=result["encoded"],
            message=f"{result['encoded']} codes written (thresholds {result['code_version']}), "
                    f"index ready, {len(result['slice_indexes'])} per-category and per-month "
                    "indexes")
    job.refresh_from_db()
    return job


_CODE_PHASES = {"fit": "fitting thresholds", "encode": "writing codes",
                "index": "building the HNSW index",
                "slices": "building per-category and per-month indexes"}


class _IndexBuildWatcher:
    """Reports an index build's progress (tuples, or heap blocks, done / total) every second
    from its own database connection (the building one is busy)."""

    def __init__(self, pid: int, on_progress: Callable[[str, int, int], None]) -> None:
        import threading

        self.pid, self.on_progress = pid, on_progress
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from django.db import connections

        try:
            while not self.done.wait(1.0):
                with connections["default"].cursor() as cursor:
                    # pgvector's HNSW build reports heap blocks scanned, not tuples_total.
                    cursor.execute(
                        "SELECT tuples_done, tuples_total, blocks_done, blocks_total "
                        "FROM pg_stat_progress_create_index WHERE pid = %s", [self.pid])
                    row = cursor.fetchone()
                if row:
                    tuples_done, tuples_total, blocks_done, blocks_total = (int(v or 0) for v in row)
                    if tuples_total:
                        self.on_progress("index", tuples_done, tuples_total)
                    else:
                        self.on_progress("index", blocks_done, blocks_total)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)


# --- embedding ----------------------------------------------------------------------------------

def quantized_copies(vector: np.ndarray) -> tuple[str, str, str]:
    """Full vector, its half-precision copy and its 1-bit-per-dimension sign copy, as the text
    literals of pgvector's types (psycopg needs no adapter registration for these)."""
    return (Vector(vector).to_text(), HalfVector(vector.astype(np.float16)).to_text(),
            Bit(vector > 0).to_text())


def papers_embed(
    *, paper_ids: Iterable[int], space: EmbeddingSpace | None = None,
    spaces: Sequence[EmbeddingSpace] | None = None,
) -> int:
    """Compute and store vectors for the given papers in `space` (or each of `spaces`);
    returns how many vectors were written.

    Idempotent: papers whose stored vector was computed from their current text are skipped,
    deleted papers are ignored. Safe to run twice at once (upsert on the unique key).
    Aspect spaces share one pass over the abstracts' sentences.
    """
    targets = list(spaces) if spaces else [space or space_for_model()]
    ids = list(paper_ids)
    todo_by_space: dict[int, set[int]] = {}
    for target in targets:
        current = set(PaperEmbedding.objects.filter(
            space=target, paper_id__in=ids, content_hash=F("paper__content_hash")
        ).values_list("paper_id", flat=True))
        todo_by_space[target.pk] = {i for i in ids if i not in current}
    needed = set().union(*todo_by_space.values())
    if not needed:
        return 0
    papers = list(Paper.objects.filter(pk__in=needed).order_by("pk")
                  .values_list("pk", "title", "abstract", "content_hash"))
    if not papers:  # all deleted meanwhile
        return 0
    written = 0
    for model_name in {t.model_name for t in targets}:
        encoder = get_encoder(model_name)
        group = [t for t in targets if t.model_name == model_name]
        if any(t.aspect == "generic" for t in group):
            generic = encoder.encode([paper_text(t, a) for _, t, a, _ in papers],
                                     batch_size=settings.EMBEDDING_BATCH_SIZE)
        else:  # aspect-only work (the usual second wave): derive from the stored vectors
            generic = _generic_vectors(encoder, papers)
        aspect_spaces = [t for t in group if t.aspect != "generic"]
        per_aspect = {}
        if aspect_spaces:
            from search.aspect_vectors import aspect_vectors

            per_aspect = aspect_vectors(encoder=encoder, papers=[(t, a) for _, t, a, _ in papers],
                                        generic=generic, aspects=[t.aspect for t in aspect_spaces])
        for target in group:
            vectors, evidence = per_aspect.get(target.aspect, (generic, [[] for _ in papers]))
            thresholds = space_code_thresholds(target)
            rows, code_rows = [], []
            for (pk, _, _, digest), vector, sentences in zip(papers, vectors, evidence):
                if pk in todo_by_space[target.pk]:
                    rows.append((pk, target.pk, *quantized_copies(vector), digest,
                                 json.dumps(sentences), pk))
                    code_rows.append((pk, None if thresholds is None
                                      else codes.bit_literal(vector, thresholds)))
            _write_vectors(target.pk, rows, code_rows)
            written += len(rows)
    return written


def _generic_vectors(encoder, papers: list[tuple]) -> np.ndarray:
    """Generic vectors for (pk, title, abstract, hash) rows: the stored current ones where the
    generic space of this model has them (aspect vectors are derived from these), the rest
    encoded now."""
    from search.selectors import stored_vectors

    space = EmbeddingSpace.objects.filter(model_name=encoder.name, model_version=encoder.version,
                                          aspect="generic").first()
    stored = stored_vectors(space, [p[0] for p in papers]) if space else {}
    missing = [p for p in papers if p[0] not in stored]
    if missing:
        fresh = encoder.encode([paper_text(t, a) for _, t, a, _ in missing],
                               batch_size=settings.EMBEDDING_BATCH_SIZE)
        stored.update({p[0]: v for p, v in zip(missing, fresh)})
    return np.stack([stored[p[0]] for p in papers]).astype(np.float32)


def _write_vectors(space_id: int, rows: list[tuple], code_rows: list[tuple[int, str | None]]
                   ) -> None:
    """Upsert vectors with their half and bit copies, and in the same transaction their
    ternary codes (or drop a code that would no longer match its vector)."""
    if not rows:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        # The paper may have been deleted while we were encoding: insert only if it exists.
        cursor.executemany(
            """
            INSERT INTO search_paperembedding
                (paper_id, space_id, embedding, embedding_half, embedding_bit, content_hash,
                 evidence, computed_at)
            SELECT %s, %s, %s::vector, %s::halfvec, %s::varbit, %s, %s::jsonb, now()
            WHERE EXISTS (SELECT 1 FROM search_paper WHERE id = %s)
            ON CONFLICT (space_id, paper_id) DO UPDATE SET
                embedding = EXCLUDED.embedding, embedding_half = EXCLUDED.embedding_half,
                embedding_bit = EXCLUDED.embedding_bit, content_hash = EXCLUDED.content_hash,
                evidence = EXCLUDED.evidence, computed_at = EXCLUDED.computed_at
            """,
            rows,
        )
        fresh = [(code, space_id, pk) for pk, code in code_rows if code is not None]
        if fresh:
            cursor.executemany(
                "INSERT INTO search_papercode "
                "(embedding_id, space_id, code, categories, published) "
                "SELECT e.id, e.space_id, %s::varbit, p.categories, p.published "
                "FROM search_paperembedding e JOIN search_paper p ON p.id = e.paper_id "
                "WHERE e.space_id = %s AND e.paper_id = %s "
                "ON CONFLICT (embedding_id) DO UPDATE SET code = EXCLUDED.code, "
                "categories = EXCLUDED.categories, published = EXCLUDED.published", fresh)
        orphaned = [(space_id, pk) for pk, code in code_rows if code is None]
        if orphaned:
            cursor.executemany(
                "DELETE FROM search_papercode c USING search_paperembedding e "
                "WHERE c.embedding_id = e.id AND e.space_id = %s AND e.paper_id = %s", orphaned)


def queue_embedding(*, paper_ids: Sequence[int], spaces: Sequence[EmbeddingSpace] | None = None
                    ) -> int:
    """Queue embedding tasks in chunks: generic vectors first, so that semantic search gets
    going early, then all aspect vectors of a chunk in one task (they share the sentence
    encodings). Returns the number of tasks sent."""
    from search.tasks import embed_papers

    spaces = list(spaces or configured_spaces())
    waves = [[s.pk for s in spaces if s.aspect == "generic"],
             [s.pk for s in spaces if s.aspect != "generic"]]
    chunk = settings.EMBEDDING_TASK_CHUNK
    sent = 0
    for space_ids in (w for w in waves if w):
        for start in range(0, len(paper_ids), chunk):
            embed_papers.delay(list(paper_ids[start:start + chunk]), space_ids)
            sent += 1
    return sent


def papers_missing_embedding_ids(*, space: EmbeddingSpace, limit: int | None = None) -> list[int]:
    """Papers with no vector in `space`, or one computed from older text."""
    qs = (Paper.objects.exclude(pk__in=PaperEmbedding.objects.filter(
        space=space, content_hash=F("paper__content_hash")).values("paper_id"))
        .order_by("pk").values_list("pk", flat=True))
    return list(qs[:limit] if limit else qs)


def fail_stale_jobs(*, older_than_minutes: int = 60) -> int:
    """Mark jobs that have been 'running' with no end for too long as failed (a dead worker)."""
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    stale = Job.objects.filter(status=Job.Status.RUNNING, started_at__lt=cutoff)
    failed = stale.filter(kind=Job.Kind.INDEX).update(
        status=Job.Status.FAILED, finished_at=timezone.now(),
        message="the worker stopped before finishing; the periodic sweep queues the build "
                "again and it resumes where it stopped")
    return failed + stale.update(
        status=Job.Status.FAILED, finished_at=timezone.now(),
        message="the worker stopped before finishing; ingestion is idempotent, so re-submit "
                "the file to complete it")
