import pytest

from search import services
from search.models import Paper

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)))


def test_the_search_page_renders_results_in_a_full_page(client, corpus):
    response = client.get("/", {"q": "underwater sonar"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and 'id="results"' in html
    assert "Marine Debris" in html


def test_an_htmx_request_gets_only_the_results_fragment(client, corpus):
    response = client.get("/", {"q": "underwater sonar"}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert "<html" not in html and 'class="results"' in html
    assert "Marine Debris" in html


def test_bad_input_on_the_page_shows_a_message_not_an_error_page(client, corpus):
    response = client.get("/", {"q": "x", "published_after": "yesterday"})

    assert response.status_code == 200
    assert "not a date" in response.content.decode()


def test_the_labels_page_shows_the_names_found_in_the_text(client, corpus):
    # (the paper page's names: tests/recommend/test_views.py)
    assert "Not counted yet" in client.get("/labels/").content.decode()
    services.concept_stats_fit()
    html = client.get("/labels/").content.decode()
    assert "Found in the text" in html and "Large Language Model" in html
    filtered = client.get("/", {"concept": "task:Semantic Segmentation"}).content.decode()
    assert "Marine Debris" in filtered and "Susceptibility of Large Language Models" not in filtered


def test_the_status_fragment_shows_embedding_progress(client, fixtures_dir):
    services.papers_ingest_file(path=fixtures_dir / "kaggle-sample.json")
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)[:5]))

    html = client.get("/status/embeddings").content.decode()

    assert "5 / 15" in html and "<progress" in html


def test_a_superseded_space_is_not_shown_as_in_progress(client, fixtures_dir):
    from search.models import EmbeddingSpace

    services.papers_ingest_file(path=fixtures_dir / "kaggle-sample.json")
    old = services.space_for_model()
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)[:3]),
                          space=old)
    EmbeddingSpace.objects.filter(pk=old.pk).update(is_active=False)
    current = EmbeddingSpace.objects.create(
        name="newer", model_name=old.model_name, model_version="newer", dimension=old.dimension,
        aspect="generic", is_active=True)
    services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)),
                          space=current)

    html = client.get("/status/embeddings").content.decode()

    assert "15 papers, all embedded" in html and "every 3s" not in html
