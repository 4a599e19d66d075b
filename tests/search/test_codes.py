"""The ternary code: its distance, its build (fit, fill, index), and that it never goes stale."""

from datetime import date

import numpy as np
import pytest
from django.db import connection

from search import codes, services
from search.embedders import get_encoder, paper_text
from search.models import EmbeddingSpace, Job, Paper, PaperCode, PaperEmbedding
from search.params import SearchFilters
from search.planner import vector_ranking
from tests.conftest import wait_for
from tests.factories import PaperFactory

pytestmark = pytest.mark.django_db


def bits_of(code) -> np.ndarray:
    text = code.to_text() if hasattr(code, "to_text") else str(code)
    return np.array([c == "1" for c in text])


def test_hamming_distance_between_codes_is_the_l1_distance_between_levels():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    thresholds = codes.fit_thresholds(vectors)
    a, b = codes.encode(vectors[:50], thresholds), codes.encode(vectors[50:100], thresholds)

    levels = lambda v: (v[:, None, :] > thresholds[None]).sum(axis=1)  # noqa: E731
    hamming = (a != b).sum(axis=1)
    l1 = np.abs(levels(vectors[:50]) - levels(vectors[50:100])).sum(axis=1)
    assert (hamming == l1).all()
    assert thresholds.shape == (2, 16) and a.shape == (50, 32)
    # tertiles: each level holds about a third of the values
    counts = np.bincount(levels(vectors).ravel(), minlength=3) / vectors.size
    assert np.allclose(counts, 1 / 3, atol=0.01)


@pytest.fixture
def embedded(fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    space = services.space_for_model()
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)), space=space)
    return space


def most_frequent_category() -> str:
    from collections import Counter

    counts = Counter(c for cats in Paper.objects.values_list("categories", flat=True) for c in cats)
    return counts.most_common(1)[0][0]


def index_oid(name: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_class WHERE relname = %s", [name])
        row = cursor.fetchone()
        return row[0] if row else None


def index_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_class WHERE relname = %s", [name])
        return cursor.fetchone() is not None


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


def test_ternary_search_returns_the_exact_neighbours_once_built(embedded):
    query = get_encoder().encode(["image restoration with transformers"])[0]
    exact, _ = vector_ranking(space=embedded, vector=query, k=10, filters=SearchFilters(),
                              precision="exact")

    before, plan_before = vector_ranking(space=embedded, vector=query, k=10,
                                         filters=SearchFilters(), precision="ternary")
    services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    after, plan_after = vector_ranking(space=embedded, vector=query, k=10,
                                       filters=SearchFilters(), precision="ternary")

    assert plan_before["precision"] == "halfvec" and "not built" in plan_before["note"]
    assert plan_after["precision"] == "ternary"
    assert [p for p, _ in before] == [p for p, _ in after] == [p for p, _ in exact]
    assert after[0][1] == pytest.approx(exact[0][1], abs=1e-6)  # float scores


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


def test_frequent_categories_get_their_own_graph_and_it_serves_their_filter(embedded,
                                                                             monkeypatch):

    from search import planner

    monkeypatch.setattr(planner, "EXACT_SCAN_MAX", 5)  # "frequent" = more than 5 papers here
    # the category's month graphs have their own test; here its whole graph is walked
    monkeypatch.setattr(planner, "CATEGORY_MONTH_WALKS_MAX", 0)
    result = services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    counts = {}
    for cats in Paper.objects.values_list("categories", flat=True):
        for c in cats:
            counts[c] = counts.get(c, 0) + 1
    frequent = sorted(c for c, n in counts.items() if n > 5)
    assert sorted(n for n in result["slice_indexes"] if "_cat_" in n) == sorted(
        planner.category_index_name(embedded, c) for c in frequent)
    category = frequent[0]
    assert index_exists(planner.category_index_name(embedded, category))

    query = get_encoder().encode(["robots that learn to grasp objects"])[0]
    for filters, expected_plan in (
            (SearchFilters(categories=(category,)), "category_graph"),
            (SearchFilters(categories=(category,), published_after=date(2025, 3, 1)),
             "category_graph_iterative")):
        exact, _ = vector_ranking(space=embedded, vector=query, k=5, filters=filters,
                                  precision="exact")
        got, plan = vector_ranking(space=embedded, vector=query, k=5, filters=filters,
                                   exact_scan_max=5)
        assert plan["plan"] == expected_plan
        assert [p for p, _ in got] == [p for p, _ in exact]

    # "similar to this paper" excludes the paper itself, on the same graph
    first = got[0][0]
    rest, plan = vector_ranking(space=embedded, vector=query, k=4, filters=filters,
                                exclude_ids=[first], exact_scan_max=5)
    assert plan["plan"] == expected_plan and first not in [p for p, _ in rest]
    assert [p for p, _ in rest] == [p for p, _ in exact][1:]


def test_a_papers_new_categories_and_date_reach_its_code_row(embedded):
    services.space_build_code(space=embedded)
    paper = Paper.objects.order_by("pk").first()


    Paper.objects.filter(pk=paper.pk).update(categories=["q-bio.NC", "cs.NE"])
    Paper.objects.filter(pk=paper.pk).update(published=date(2020, 2, 29))

    code = PaperCode.objects.get(embedding__paper=paper, space=embedded)
    assert code.categories == ["q-bio.NC", "cs.NE"] and code.published == date(2020, 2, 29)


def test_a_lagging_category_copy_never_adds_a_paper_outside_the_category(embedded, monkeypatch):
    from search import planner

    monkeypatch.setattr(planner, "EXACT_SCAN_MAX", 5)
    monkeypatch.setattr(planner, "CATEGORY_MONTH_WALKS_MAX", 0)  # the whole category graph
    services.space_build_code(space=embedded)
    category = most_frequent_category()
    embedded.refresh_from_db()
    outsider = Paper.objects.exclude(categories__contains=[category]).order_by("pk").first()
    # A code row claiming the category its paper does not have (as a lost race would leave):
    PaperCode.objects.filter(embedding__paper=outsider).update(categories=[category])
    query = np.asarray(PaperEmbedding.objects.get(space=embedded, paper=outsider).embedding)

    got, plan = vector_ranking(space=embedded, vector=query, k=5,
                               filters=SearchFilters(categories=(category,)), exact_scan_max=5)

    assert plan["plan"].startswith("category_graph")
    assert outsider.pk not in [p for p, _ in got] and len(got) == 5
    assert all(category in Paper.objects.get(pk=p).categories for p, _ in got)

    # the same with a date filter, walked on the code rows' own dates

    insider = Paper.objects.filter(categories__contains=[category]).order_by("pk").first()
    recent = insider.published
    Paper.objects.filter(pk=insider.pk).update(published=date(2001, 1, 1))  # trigger syncs...
    PaperCode.objects.filter(embedding__paper=insider).update(published=recent)  # ...then lags
    query = np.asarray(PaperEmbedding.objects.get(space=embedded, paper=insider).embedding)
    got, plan = vector_ranking(space=embedded, vector=query, k=5, exact_scan_max=5,
                               filters=SearchFilters(categories=(category,),
                                                     published_after=date(2024, 1, 1)))
    assert plan["plan"].startswith("category_graph_iterative")
    assert insider.pk not in [p for p, _ in got] and len(got) == 5


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


def test_a_build_left_running_by_a_dead_worker_is_failed_with_a_fitting_message(embedded):
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(hours=3)
    build = Job.objects.create(kind=Job.Kind.INDEX, status=Job.Status.RUNNING, started_at=long_ago,
                               params={"space_id": embedded.pk})
    ingest = Job.objects.create(kind=Job.Kind.INGEST, status=Job.Status.RUNNING,
                                started_at=long_ago)

    assert services.fail_stale_jobs() == 2

    build.refresh_from_db(), ingest.refresh_from_db()
    assert build.status == ingest.status == Job.Status.FAILED
    assert "resumes" in build.message and "re-submit the file" in ingest.message
    assert not services.space_code_job_pending(embedded)


def spread_over_months(months: list[date]) -> None:
    """Give the fixture papers dates spread evenly over the given months (one per day from
    the 1st, round robin), so each month holds a known share."""
    papers = list(Paper.objects.order_by("pk").values_list("pk", flat=True))
    for i, pk in enumerate(papers):
        month = months[i % len(months)]
        Paper.objects.filter(pk=pk).update(published=month.replace(day=1 + (i // len(months))))


def test_a_date_filter_walks_the_graphs_of_the_months_it_spans(embedded, monkeypatch):
    from search import planner

    months = [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]
    spread_over_months(months)  # 10 papers a month, dated the 1st to the 10th
    monkeypatch.setattr(planner, "EXACT_SCAN_MAX", 5)
    result = services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    assert {planner.month_index_name(embedded, m) for m in months} <= set(result["slice_indexes"])
    query = get_encoder().encode(["language models for low-resource translation"])[0]

    monkeypatch.setattr(planner, "MONTH_EXACT_MAX", 3)
    cases = [
        # whole months, and the open end after the last graph (empty here) ranked exactly
        (SearchFilters(published_after=date(2025, 2, 1)), (3, 0, 1)),
        # a cut month with few rows in range (ranked exactly) + the months after it
        (SearchFilters(published_after=date(2025, 2, 9)), (2, 0, 2)),
        # a cut month with many rows in range: walked with the date filter
        (SearchFilters(published_after=date(2025, 3, 3), published_before=date(2025, 3, 31)),
         (0, 1, 0)),
        # days before the first month graph: ranked exactly, with the whole January graph
        (SearchFilters(published_after=date(2024, 12, 1), published_before=date(2025, 1, 31)),
         (1, 0, 1)),
    ]
    for filters, (whole, cut, exact_ranges) in cases:
        exact, _ = vector_ranking(space=embedded, vector=query, k=5, filters=filters,
                                  precision="exact")
        got, plan = vector_ranking(space=embedded, vector=query, k=5, filters=filters,
                                   exact_scan_max=5)
        assert plan["plan"] == "month_graphs", (filters, plan)
        assert plan["months"] == {"whole": whole, "cut": cut, "exact_ranges": exact_ranges}
        assert [p for p, _ in got] == [p for p, _ in exact], filters

    # more months than MONTH_WALKS_MAX: one walk of the whole graph instead
    monkeypatch.setattr(planner, "MONTH_WALKS_MAX", 2)
    _, plan = vector_ranking(space=embedded, vector=query, k=5, exact_scan_max=5,
                             filters=SearchFilters(published_after=date(2025, 1, 1)))
    assert plan["plan"] == "hnsw_iterative"


def test_a_category_and_date_filter_walks_that_categorys_month_graphs(embedded, monkeypatch):
    from search import planner

    months = [date(2025, 1, 1), date(2025, 2, 1)]
    spread_over_months(months)  # 20 papers a month, dated the 1st to the 20th
    category = most_frequent_category()
    per_month = [Paper.objects.filter(categories__contains=[category], published__month=m.month)
                 .count() for m in months]
    assert min(per_month) >= 2
    k = min(3, min(per_month))  # a month's graph holds enough for a full page
    monkeypatch.setattr(planner, "EXACT_SCAN_MAX", min(per_month) - 1)  # both months qualify
    result = services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    assert {planner.month_index_name(embedded, m, category) for m in months} <= set(
        result["slice_indexes"])
    query = get_encoder().encode(["language models for low-resource translation"])[0]

    for filters, shape in (
            (SearchFilters(categories=(category,), published_after=date(2025, 1, 1)), (2, 0, 1)),
            (SearchFilters(categories=(category,), published_after=date(2025, 1, 1),
                           published_before=date(2025, 1, 31)), (1, 0, 0))):
        exact, _ = vector_ranking(space=embedded, vector=query, k=k, filters=filters,
                                  precision="exact")
        got, plan = vector_ranking(space=embedded, vector=query, k=k, filters=filters,
                                   exact_scan_max=min(per_month) - 1)
        assert plan["plan"] == "category_month_graphs", (filters, plan)
        assert tuple(plan["months"].values()) == shape
        assert [p for p, _ in got] == [p for p, _ in exact]


def test_a_lagging_date_copy_never_adds_a_paper_outside_the_range(embedded, monkeypatch):
    from search import planner

    spread_over_months([date(2025, 1, 1), date(2025, 2, 1)])
    monkeypatch.setattr(planner, "EXACT_SCAN_MAX", 5)
    services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    insider = Paper.objects.filter(published__month=2).order_by("pk").first()
    Paper.objects.filter(pk=insider.pk).update(published=date(2001, 1, 1))  # trigger syncs...
    PaperCode.objects.filter(embedding__paper=insider).update(published=date(2025, 2, 1))  # lags
    query = np.asarray(PaperEmbedding.objects.get(space=embedded, paper=insider).embedding)

    got, plan = vector_ranking(space=embedded, vector=query, k=5, exact_scan_max=5,
                               filters=SearchFilters(published_after=date(2025, 2, 1)))

    assert plan["plan"] == "month_graphs"
    assert insider.pk not in [p for p, _ in got] and len(got) == 5


def test_the_sweep_queues_a_build_when_a_month_outgrows_the_threshold(embedded, monkeypatch):
    from search import planner, tasks

    spread_over_months([date(2025, 1, 1), date(2025, 2, 1)])
    monkeypatch.setattr(planner, "EXACT_SCAN_MAX", 15)  # 20 papers a month: both get a graph
    services.space_build_code(space=embedded)
    embedded.refresh_from_db()
    assert services.space_slice_indexes_missing(embedded) == []

    spread_over_months([date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)])
    monkeypatch.setattr(planner, "EXACT_SCAN_MAX", 5)  # now 10 a month: March and April too
    missing = services.space_slice_indexes_missing(embedded)
    assert {planner.month_index_name(embedded, date(2025, m, 1)) for m in (3, 4)} <= set(missing)
    jobs = lambda: Job.objects.filter(kind=Job.Kind.INDEX, params__space_id=embedded.pk)
    tasks._queue_code_build(embedded)
    assert jobs().count() == 1

    jobs().update(status=Job.Status.DONE)
    tasks._queue_code_build(embedded)  # checked again only after SLICE_CHECK_INTERVAL
    assert jobs().count() == 1
    services.space_code_job_run(job=jobs().get())
    assert services.space_slice_indexes_missing(embedded) == []
