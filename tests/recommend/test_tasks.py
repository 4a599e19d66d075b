"""Background builds of the recommend app: the nearest names' embeddings by the periodic
task and by the command; the tf-idf fit the admin queues."""

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from recommend import lexical, nearest_names, tasks
from recommend.models import LexicalModel
from search import services
from search.models import Paper
from tests.conftest import TEST_EMBEDDER, wait_for


@pytest.mark.django_db
def test_the_periodic_task_builds_the_names_of_every_model_in_use(cold_name_cache):
    assert "build-nearest-names" in {
        name for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if entry["task"] == "recommend.tasks.build_nearest_names"}
    services.space_for_model()  # the active generic space of the test encoder

    written = tasks.build_nearest_names.apply().get()

    assert written == [str(nearest_names.cache_path("task", TEST_EMBEDDER))]
    assert nearest_names.is_built("task", TEST_EMBEDDER)
    modified = cold_name_cache.joinpath(written[0]).stat().st_mtime_ns
    tasks.build_nearest_names.apply().get()  # built already: nothing rewritten
    assert cold_name_cache.joinpath(written[0]).stat().st_mtime_ns == modified


def test_the_command_builds_them_without_a_database(cold_name_cache, capsys):
    call_command("build_nearest_names", "--model", TEST_EMBEDDER)

    assert nearest_names.is_built("task", TEST_EMBEDDER)
    assert str(nearest_names.cache_path("task", TEST_EMBEDDER)) in capsys.readouterr().out


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("op", password="pw-123456"))
    return client


def fit_now(admin_client, model):
    return admin_client.post("/admin/recommend/lexicalmodel/",
                             {"action": "fit_now", "_selected_action": [model.pk]}, follow=True)


@pytest.fixture
def small_corpus(fixtures_dir, monkeypatch):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    monkeypatch.setattr(lexical, "FIT_MIN", 10)
    return LexicalModel.objects.create(version="older", terms=["sonar"], idf=[1.0], papers=1, corpus=1)


def test_the_admins_fit_now_queues_the_fit_instead_of_fitting_in_the_request(
        admin_client, small_corpus, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = fit_now(admin_client, small_corpus)

    assert response.status_code == 200 and "queued a fit" in response.content.decode().lower()
    assert list(LexicalModel.objects.values_list("version", flat=True)) == ["older"]
    assert len(queued) == 1


@pytest.mark.django_db(transaction=True)
def test_the_queued_fit_runs_in_a_worker(celery_worker, fixtures_dir, monkeypatch):
    services.papers_ingest_file(path=fixtures_dir / "arxiv-daily-2025-04-01.jsonl")
    monkeypatch.setattr(lexical, "FIT_MIN", 10)
    older = LexicalModel.objects.create(version="older", terms=["sonar"], idf=[1.0], papers=1, corpus=1)
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_superuser("op", password="pw-123456"))
    fit_now(client, older)

    fitted = wait_for(lambda: LexicalModel.objects.exclude(version="older").first())
    assert fitted.corpus == Paper.objects.count() and len(fitted.terms) > 100
