"""Building a space's ternary code (search.services.codes): fit, fill, index, as a job and
from the periodic sweep, and that a code never goes stale."""

from datetime import date

import numpy as np
import pytest
from django.db import connection

from search import codes, services
from search.embedders import get_encoder, paper_text
from search.models import EmbeddingSpace, Job, Paper, PaperCode, PaperEmbedding
from tests.conftest import wait_for
from tests.factories import PaperFactory
from tests.search.graphs import index_exists, index_oid, spread_over_months

pytestmark = pytest.mark.django_db


def bits_of(code) -> np.ndarray:
    text = code.to_text() if hasattr(code, "to_text") else str(code)
    return np.array([c == "1" for c in text])


def test_building_the_code_fits_thresholds_writes_every_code_and_indexes_them(embedded):
    phases = []

    result = services.space_build_code(space=embedded,
                                       on_progress=lambda *p: phases.append(p))

    embedded.refresh_from_db()
    thresholds = np.asarray(embedded.code_thresholds, dtype=np.float32)
    assert embedded.code_version == codes.version(thresholds)
    assert result["encoded"] == 40 == PaperCode.objects.filter(space=embedded).count()
    for row in PaperEmbedding.objects.filter(space=embedded).select_related("code"):
        expected = codes.encode(np.asarray(row.embedding), thresholds)[0]
        assert (bits_of(row.code.code) == expected).all()
    assert index_exists(f"emb_s{embedded.pk}_code_hnsw")
    assert ("encode", 40, 40) in phases
    # idempotent: a second run has nothing left to do
    assert services.space_build_code(space=embedded)["encoded"] == 0


def test_a_changed_vector_gets_a_new_code_in_the_same_write(embedded):
    services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    paper = Paper.objects.order_by("pk").first()
    old = bits_of(PaperCode.objects.get(embedding__paper=paper, space=embedded).code)

    Paper.objects.filter(pk=paper.pk).update(abstract="Protein folding with diffusion models.",
                                             content_hash="changed")
    services.papers_embed(paper_ids=[paper.pk], space=embedded)

    paper.refresh_from_db()
    vector = get_encoder().encode([paper_text(paper.title, paper.abstract)])[0]
    new = bits_of(PaperCode.objects.get(embedding__paper=paper, space=embedded).code)
    assert (new == codes.encode(vector, np.asarray(embedded.code_thresholds))[0]).all()
    assert (new != old).any()


def test_a_vector_written_without_thresholds_drops_its_old_code(embedded):
    services.space_build_code(space=embedded)
    paper = Paper.objects.order_by("pk").first()
    # A writer that read the space before its thresholds were fitted:
    EmbeddingSpace.objects.filter(pk=embedded.pk).update(code_thresholds=None, code_version="")
    Paper.objects.filter(pk=paper.pk).update(abstract="Something else entirely.",
                                             content_hash="changed")

    services.papers_embed(paper_ids=[paper.pk], space=embedded)

    assert not PaperCode.objects.filter(embedding__paper=paper).exists()
    assert PaperCode.objects.filter(space=embedded).count() == 39


def test_refit_rewrites_every_code(embedded):
    services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    first = embedded.code_version
    # new vectors move the tertiles
    for paper in PaperFactory.create_batch(5, abstract="Quantum error correction codes."):
        services.papers_embed(paper_ids=[paper.pk], space=embedded)

    graph_before = index_oid(f"emb_s{embedded.pk}_code_hnsw")

    result = services.space_build_code(space=embedded, refit=True)

    embedded.refresh_from_db()
    assert embedded.code_version != first
    assert result["encoded"] == 45 == PaperCode.objects.filter(space=embedded).count()
    assert index_exists(f"emb_s{embedded.pk}_code_hnsw")
    # the old graph was dropped and built again over the new codes
    assert index_oid(f"emb_s{embedded.pk}_code_hnsw") != graph_before


def test_the_build_runs_as_a_background_job_with_progress(celery_worker, fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    space = services.space_for_model()
    wait_for(lambda: PaperEmbedding.objects.filter(space=space).count() == 40, timeout=90)

    job = services.space_code_job_create(space=space)

    done = wait_for(lambda: Job.objects.filter(pk=job.pk, status=Job.Status.DONE).first(),
                    timeout=60)
    assert done.processed == done.total == 40
    assert "index ready" in done.message
    assert PaperCode.objects.filter(space=space).count() == 40


def test_a_papers_new_categories_and_date_reach_its_code_row(embedded):
    services.space_build_code(space=embedded)
    paper = Paper.objects.order_by("pk").first()


    Paper.objects.filter(pk=paper.pk).update(categories=["q-bio.NC", "cs.NE"])
    Paper.objects.filter(pk=paper.pk).update(published=date(2020, 2, 29))

    code = PaperCode.objects.get(embedding__paper=paper, space=embedded)
    assert code.categories == ["q-bio.NC", "cs.NE"] and code.published == date(2020, 2, 29)


def test_the_periodic_sweep_queues_the_code_build_once_a_space_has_enough_vectors(embedded,
                                                                                 monkeypatch):
    from project.celery import app
    from search.tasks import EMBED_QUEUE, embed_missing

    def embed_missing_now():  # the sweep skips its round while tasks wait in the broker
        with app.connection_for_write() as conn:
            conn.default_channel.client.delete(EMBED_QUEUE)
        embed_missing()

    jobs = lambda: Job.objects.filter(kind=Job.Kind.INDEX, params__space_id=embedded.pk)  # noqa: E731
    monkeypatch.setattr(services, "CODE_FIT_MIN", 1_000)
    embed_missing_now()
    assert not jobs().exists()  # 40 vectors: not worth fitting yet

    monkeypatch.setattr(services, "CODE_FIT_MIN", 40)
    embed_missing_now()
    embed_missing_now()  # a second sweep while the job is pending queues nothing more
    assert jobs().count() == 1

    jobs().update(status=Job.Status.DONE)
    services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    PaperCode.objects.filter(space=embedded).order_by("pk").first().delete()  # a lost code
    embed_missing_now()
    assert jobs().count() == 2

    jobs().update(status=Job.Status.DONE)
    services.space_build_code(space=embedded)
    with connection.cursor() as cursor:  # as migration 0006 does before rewriting code rows
        cursor.execute(f"DROP INDEX emb_s{embedded.pk}_code_hnsw")
    embed_missing_now()
    assert jobs().count() == 3


def test_the_sweep_queues_a_build_when_a_month_outgrows_the_threshold(embedded, monkeypatch):
    from search import planner, tasks

    spread_over_months([date(2025, 1, 1), date(2025, 2, 1)])
    monkeypatch.setattr(planner.limits, "EXACT_SCAN_MAX", 15)  # 20 papers a month: both get a graph
    services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    assert services.space_slice_indexes_missing(embedded) == []

    spread_over_months([date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)])
    monkeypatch.setattr(planner.limits, "EXACT_SCAN_MAX", 5)  # now 10 a month: March and April too
    missing = services.space_slice_indexes_missing(embedded)
    assert {planner.month_index_name(embedded, date(2025, m, 1)) for m in (3, 4)} <= set(missing)

    def jobs():
        return Job.objects.filter(kind=Job.Kind.INDEX, params__space_id=embedded.pk)

    tasks._queue_code_build(embedded)
    assert jobs().count() == 1

    jobs().update(status=Job.Status.DONE)
    tasks._queue_code_build(embedded)  # checked again only after SLICE_CHECK_INTERVAL
    assert jobs().count() == 1
    services.space_code_job_run(job=jobs().get())
    assert services.space_slice_indexes_missing(embedded) == []
