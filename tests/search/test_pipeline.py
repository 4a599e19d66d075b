"""The pipeline end to end with a real Celery worker on the real Redis broker."""


from search import services
from search.models import Paper, PaperEmbedding
from search.params import parse_search_params
from search.selectors import paper_search
from search.tasks import embed_missing
from tests.conftest import wait_for


def generic_vectors() -> int:
    return PaperEmbedding.objects.filter(space__aspect="generic").count()


def test_an_ingested_paper_becomes_searchable_through_the_worker(celery_worker, fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")

    # Tasks were queued on commit; the worker embeds all 40 papers in every space.
    wait_for(lambda: generic_vectors() == 40, timeout=90)
    target = Paper.objects.get(arxiv_id="2503.22880")
    result = paper_search(params=parse_search_params(
        {"q": target.title, "mode": "semantic", "k": "3"}))
    assert result.results[0].paper.pk == target.pk


def test_the_periodic_task_requeues_papers_left_without_vectors(celery_worker, fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "kaggle-sample.json")
    spaces = services.configured_spaces()
    wait_for(lambda: PaperEmbedding.objects.count() == 15 * len(spaces), timeout=120)
    # Simulate a worker that died mid-task: vectors lost for some papers.
    PaperEmbedding.objects.filter(paper__arxiv_id__in=["0704.0001", "0704.0002"]).delete()
    assert PaperEmbedding.objects.count() == 13 * len(spaces)

    assert embed_missing.delay() is not None
    wait_for(lambda: PaperEmbedding.objects.count() == 15 * len(spaces), timeout=120)
