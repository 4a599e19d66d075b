"""Papers in: upserting parsed records (deduplicated on arXiv id and DOI), ingesting a file in
batches with line-numbered errors, and the ingestion job around an uploaded file."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from search import concepts
from search.embedders import content_hash
from search.ingest import PaperRecord, count_rows, identity_keys, read_rows
from search.models import Job, Paper
from search.services.embedding import queue_embedding
from search.services.jobs import JobProgress, job_queue, job_run
from search.services.sentences import queue_sentences

log = logging.getLogger(__name__)
MAX_JOB_ERRORS = 500
INGEST_BATCH = 500
_LABEL_FIELDS = ("authors", "categories", "venue", "tasks", "methods", "datasets", "source_url")


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
            key_candidates = identity_keys(record)
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
            transaction.on_commit(lambda: queue_sentences(paper_ids=ids))  # the second wave
    return result

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
    last_line: int = 0  # the last line of the file whose batch is committed

    def as_stats(self) -> dict:
        return {"rows": self.rows, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "failed": self.error_count,
                "last_line": self.last_line}

    @classmethod
    def resumed(cls, stats: dict, errors: list[dict]) -> IngestReport:
        """The report of an interrupted run, to go on counting from."""
        return cls(rows=stats.get("rows", 0), created=stats.get("created", 0),
                   updated=stats.get("updated", 0), unchanged=stats.get("unchanged", 0),
                   error_count=stats.get("failed", 0), errors=list(errors),
                   last_line=stats.get("last_line", 0))


def papers_ingest_file(
    *, path: Path, display_name: str | None = None, report: IngestReport | None = None,
    on_progress: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Ingest one file in batches; bad rows are reported with their line, good rows go in.

    With a `report` from an interrupted run, lines up to its `last_line` are skipped (they
    are committed and counted). `on_progress` runs inside each batch's transaction, so what
    it records (the job's progress and resume point) commits together with the batch."""
    report = report or IngestReport()
    name = display_name or path.name
    resume_after = report.last_line
    pending: list[tuple[int, PaperRecord]] = []
    line = 0

    def flush() -> None:
        with transaction.atomic():
            if pending:
                _store(pending)
            report.last_line = line
            if on_progress:
                on_progress(report)

    def _store(batch: list[tuple[int, PaperRecord]]) -> None:
        records = [r for _, r in batch]
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
            _add_error(report, name, batch[index][0], message)
        batch.clear()

    for row in read_rows(path):
        line = row.line
        if row.line <= resume_after:
            continue  # committed by the interrupted run (read again: duplicates need them)
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

    return job_queue(kind=Job.Kind.INGEST, description=f"ingest {display_name}",
                     params={"path": str(path), "file": display_name}, task=ingest_job_run,
                     user=user)


def ingest_job_from_upload(*, upload, user=None) -> Job:
    """Keep an uploaded file under UPLOAD_DIR (until its job has run: a resumed job reads it
    again) and queue its ingestion job. The callers check the size first, each in its own
    terms (a 400 / 413 from the API, a message on the dashboard)."""
    settings.UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    name = Path(upload.name or "upload.jsonl").name
    target = settings.UPLOAD_DIR / f"{uuid.uuid4().hex}-{name}"
    with target.open("wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    return ingest_job_create(path=target, display_name=name, user=user)


def ingest_job_run(*, job: Job) -> Job:
    """Run an ingestion job: counts rows first (for the progress bar), then ingests; a resumed
    job goes on after the last batch its earlier run committed."""
    path = Path(job.params["path"])
    name = job.params.get("file", path.name)
    earlier = IngestReport.resumed(job.stats, job.errors) if job.stats else None

    def ingest(progress: JobProgress) -> dict:
        total = job.total or count_rows(path)
        progress(total=total)

        def save_progress(report: IngestReport) -> None:
            progress(processed=report.rows, stats=report.as_stats(), errors=report.errors)

        report = papers_ingest_file(path=path, display_name=name, report=earlier,
                                    on_progress=save_progress)
        return {"processed": report.rows, "total": max(total, report.rows),
                "stats": report.as_stats(), "errors": report.errors,
                "message": f"{report.created} created, {report.updated} updated, "
                           f"{report.unchanged} unchanged, {report.error_count} rows rejected"}

    job = job_run(job=job, work=ingest)  # a lost database raises: the file stays for the resume
    path.unlink(missing_ok=True)
    if job.stats.get("created") or job.stats.get("updated"):
        announce_corpus_changed()
    return job


def announce_corpus_changed() -> None:
    """Queue what follows the corpus (settings.CORPUS_CHANGED_TASKS: the word model, the name
    counts, ...) now, not at the next periodic run: a fresh instance ranks as a settled one
    as soon as those are done. Sent by task name, so search imports none of them; each task
    decides itself whether there is anything to do."""
    from celery import current_app

    def send() -> None:
        for name in settings.CORPUS_CHANGED_TASKS:
            try:
                current_app.send_task(name)
            except Exception as exc:  # the broker is down: the periodic runs catch up
                log.warning("could not queue %s: %s", name, exc)

    transaction.on_commit(send)
