"""Named concepts: task / dataset names found in the text, kept current, counted, filterable."""

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from search import concepts, services, tasks
from search.models import ConceptStats, Paper

DICTIONARY = concepts.Dictionary.from_names([
    ("task", "Visual Question Answering (VQA)"),
    ("task", "Natural Language Inference"),
    ("task", "Natural Language Inference (Zero-Shot)"),
    ("task", "natural-language-inference"),
    ("task", "Pose Estimation"),
    ("task", "3D Human Pose Estimation"),
    ("task", "Image Classification"),
    ("task", "Retrieval"),
    ("dataset", "GAP"),
    ("dataset", "ImageNet"),
    ("dataset", "Yelp Review Dataset (Large)"),
])


def test_names_match_in_any_case_and_form_and_acronyms_as_written():
    found = DICTIONARY.extract("We answer VQA questions; image-classifications on ImageNet.")
    assert found == ["dataset:ImageNet", "task:Image Classification",
                     "task:Visual Question Answering (VQA)"]
    assert DICTIONARY.extract("visual question answering") == ["task:Visual Question Answering (VQA)"]
    assert DICTIONARY.extract("vqa and imagenet, written in lower case") == []


def test_variants_of_one_task_are_one_concept_and_qualifiers_are_not_aliases():
    # "(Zero-Shot)" is a leaderboard qualifier, not an alias: "zero-shot" alone names nothing,
    # and the three spellings of NLI are one concept.
    assert DICTIONARY.extract("zero-shot transfer, large models") == []
    assert DICTIONARY.extract("natural language inference") == ["task:Natural Language Inference"]


def test_overlapping_names_all_count_but_plain_single_words_and_styled_words_in_lower_case_do_not():
    assert DICTIONARY.extract("3D human pose estimation from video") == [
        "task:3D Human Pose Estimation", "task:Pose Estimation"]
    # "Retrieval" is too common a word to be a concept; "GAP" the dataset is not every gap.
    assert DICTIONARY.extract("retrieval closes the gap") == []
    assert DICTIONARY.extract("results on GAP") == ["dataset:GAP"]


def test_the_shipped_dictionary_names_its_source_and_finds_tasks_in_a_real_abstract():
    header = settings.CONCEPT_DICTIONARY.read_text(encoding="utf-8")[:600]
    assert "Papers with Code" in header and "CC BY-SA 4.0" in header
    found = concepts.paper_concepts(
        "Full-Resolution Residual Networks for Semantic Segmentation in Street Scenes",
        "Semantic image segmentation is an essential component of autonomous driving systems.")
    assert "task:Semantic Segmentation" in found and "task:Autonomous Driving" in found


@pytest.mark.django_db
class TestStored:
    @pytest.fixture
    def corpus(self, fixtures_dir):
        services.papers_ingest_file(path=fixtures_dir / "own-schema.jsonl")
        services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")

    def test_ingestion_stores_every_papers_concepts_with_the_dictionary_version(self, corpus):
        version = concepts.shipped_dictionary().version
        assert not Paper.objects.exclude(concepts_version=version).exists()
        paper = Paper.objects.get(title__startswith="Full-Resolution Residual Networks")
        assert "task:Semantic Segmentation" in paper.concepts
        unlabelled = Paper.objects.filter(tasks=[]).exclude(concepts=[])
        assert unlabelled.count() >= 30  # most arXiv papers carry no labels, but name tasks

    def test_a_new_dictionary_refreshes_old_papers_but_never_a_text_changed_meanwhile(
            self, corpus, settings, tmp_path, monkeypatch):
        path = tmp_path / "concepts.tsv"
        path.write_text("# test\ntask\tSemantic Segmentation\ndataset\tImageNet\n")
        settings.CONCEPT_DICTIONARY = path  # read anew: another file
        new = concepts.shipped_dictionary().version
        victim = Paper.objects.get(title__startswith="Wide Residual Networks")
        real = concepts.found_in

        def extract_while_someone_edits(title, abstract):
            if title.startswith("Wide Residual"):  # the text changes under our feet
                with connection.cursor() as cursor:
                    cursor.execute("UPDATE search_paper SET content_hash = 'edited' "
                                   "WHERE id = %s", [victim.pk])
            return real(title, abstract)

        monkeypatch.setattr(concepts, "found_in", extract_while_someone_edits)
        assert services.papers_refresh_concepts(batch=7) == Paper.objects.count() - 1
        stale = Paper.objects.exclude(concepts_version=new)
        assert list(stale.values_list("pk", flat=True)) == [victim.pk]
        segmentation = Paper.objects.get(title__startswith="Full-Resolution Residual")
        assert segmentation.concepts == ["task:Semantic Segmentation"]
        monkeypatch.setattr(concepts, "found_in", real)
        assert tasks.refresh_concepts() == 1  # the next periodic run takes it
        assert not Paper.objects.exclude(concepts_version=new).exists()
        # an edit of the file is seen without a restart: a new version, everything again
        path.write_text("# test\ntask\tSemantic Segmentation\n")
        assert concepts.shipped_dictionary().version != new
        assert services.papers_outdated_concepts_count() == Paper.objects.count()

    def test_counts_are_fitted_once_and_again_when_the_corpus_grows_by_a_tenth(self, fixtures_dir):
        services.papers_ingest_file(path=fixtures_dir / "own-schema.jsonl")
        assert services.concept_stats_needed()
        tasks.refresh_concepts()
        assert not services.concept_stats_needed()
        services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
        assert services.concept_stats_needed()
        tasks.refresh_concepts()
        stats = ConceptStats.objects.first()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM search_paper WHERE concepts @> %s::varchar[]",
                           [["task:Large Language Model"]])
            assert stats.frequencies["task:Large Language Model"] == cursor.fetchone()[0] > 5
        assert stats.papers == Paper.objects.count() == 52

    def test_the_concept_filter_keeps_only_papers_naming_it_and_bad_ones_are_explained(self, corpus):
        client = APIClient()
        body = client.get("/api/v1/search", {"mode": "keyword", "q": "segmentation",
                                             "concept": "task:Medical Image Segmentation"}).json()
        ids = [r["id"] for r in body["results"]]
        expected = set(Paper.objects.filter(concepts__contains=["task:Medical Image Segmentation"])
                       .values_list("pk", flat=True))
        assert ids and set(ids) <= expected
        assert all("task:Medical Image Segmentation" in r["concepts"] for r in body["results"])
        bad = client.get("/api/v1/search", {"q": "segmentation", "concept": "Medical Image"})
        assert bad.status_code == 400 and "task:Semantic Segmentation" in bad.json()["errors"]["concept"]

    def test_semantic_search_under_a_concept_filter_is_never_short(self, corpus):
        services.papers_embed(paper_ids=list(Paper.objects.values_list("pk", flat=True)))
        naming = set(Paper.objects.filter(concepts__contains=["task:Large Language Model"])
                     .values_list("pk", flat=True))
        assert len(naming) > 10
        body = APIClient().get("/api/v1/search", {"mode": "semantic", "q": "image segmentation",
                                                  "k": 10, "concept": "task:Large Language Model"}).json()
        assert len(body["results"]) == 10 and {r["id"] for r in body["results"]} <= naming

