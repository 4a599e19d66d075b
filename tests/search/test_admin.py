"""Admin actions that refit or refresh queue the work instead of doing it in the request."""

import pytest

from search import services, tasks
from search.models import ConceptStats, EmbeddingSpace, Job

pytestmark = pytest.mark.django_db


def told(response) -> str:
    """The messages the admin showed the operator."""
    return " | ".join(str(m) for m in response.context["messages"])


def test_refreshing_concepts_from_the_admin_queues_the_task(admin_client,
                                                             django_capture_on_commit_callbacks):
    stats = services.concept_stats_fit()

    with django_capture_on_commit_callbacks() as queued:
        response = admin_client.post("/admin/search/conceptstats/", {
            "action": "refresh_now", "_selected_action": [stats.pk]}, follow=True)

    assert response.status_code == 200
    assert "queued the concept refresh" in told(response)
    assert ConceptStats.objects.count() == 1  # nothing recounted in the request
    [send] = queued
    assert send.func.__self__.name == "search.tasks.refresh_concepts"
    assert send.keywords == {"recount": True}


def test_the_queued_refresh_recounts_even_when_no_count_is_due():
    services.concept_stats_fit()
    assert not services.concept_stats_needed()

    tasks.refresh_concepts(recount=True)

    assert ConceptStats.objects.count() == 2


@pytest.mark.parametrize("action,refit", [("build_code", False), ("refit_code", True)])
def test_building_codes_from_the_admin_queues_a_job(admin_client, action, refit):
    space = services.space_for_model()

    response = admin_client.post("/admin/search/embeddingspace/", {
        "action": action, "_selected_action": [space.pk]}, follow=True)

    job = Job.objects.get(kind=Job.Kind.INDEX, params__space_id=space.pk)
    assert job.status == Job.Status.QUEUED and job.params["refit"] is refit
    assert f"queued job {job.pk} for {space.name}" in told(response)
    assert EmbeddingSpace.objects.get(pk=space.pk).code_version == ""  # built by a worker
