"""The dashboard is for staff: anonymous visitors are sent to log in, other users get 403;
every section renders from what the tasks recorded, and the actions queue their work."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from search.models import Job, SpaceRegistry
from search.operations import audit, pipeline
from search.operations.dashboard import SECTIONS

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, db):
    staff = get_user_model().objects.create_user("ops", password="x" * 12, is_staff=True)
    client.force_login(staff)
    return client


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/dashboard/")
    assert client.get("/dashboard/section/recall/").status_code == 302


def test_other_users_are_refused(client):
    user = get_user_model().objects.create_user("reader", password="x" * 12)
    client.force_login(user)
    assert client.get("/dashboard/").status_code == 403
    assert client.post("/dashboard/audit/").status_code == 403


def test_every_section_renders_with_its_numbers(staff_client, audit_corpus):
    Job.objects.create(kind="ingest", status="failed", description="ingest broken.jsonl",
                       errors=[{"file": "broken.jsonl", "line": 3, "message": "invalid JSON"}],
                       message="failed: 1 bad row")
    pipeline.snapshot_take()
    audit.recall_audit(samples=3, seed=2)

    page = staff_client.get("/dashboard/").content.decode()

    for name in SECTIONS:
        assert f'id="sec-{name}"' in page
    assert "broken.jsonl:3: invalid JSON" in page
    assert audit_corpus.name in page
    assert 'data-chart="chart-recall" data-series="{&quot;x&quot;:[' in page
    section = staff_client.get("/dashboard/section/recall/", HTTP_HX_REQUEST="true")
    assert section.status_code == 200
    assert section.content.decode().lstrip().startswith('<section id="sec-recall"')
    assert staff_client.get("/dashboard/section/nothing/").status_code == 404


def test_the_failed_job_comes_first(staff_client, db):
    Job.objects.create(kind="ingest", status="done", description="ingest good.jsonl")
    Job.objects.create(kind="ingest", status="failed", description="ingest bad.jsonl")
    Job.objects.create(kind="ingest", status="done", description="ingest newer.jsonl")

    page = staff_client.get("/dashboard/section/corpus/").content.decode()
    assert page.index("bad.jsonl") < page.index("newer.jsonl") < page.index("good.jsonl")


def test_adding_an_unavailable_model_says_why(staff_client, db):
    response = staff_client.post("/dashboard/spaces/add/", {"model_name": "/no/such/model"},
                                 follow=True)
    assert "not a local sentence-transformers folder" in response.content.decode()
    assert not SpaceRegistry.objects.exists()


def test_deleting_needs_the_space_name_typed(staff_client, audit_corpus):
    from search.operations import registry

    shadow = registry.registry_add_space(model_name="hash:64")
    response = staff_client.post(f"/dashboard/spaces/{shadow.pk}/delete/", {"confirm": "yes"},
                                 follow=True)
    assert f"type the space&#x27;s name ({shadow.name})" in response.content.decode()
    shadow.refresh_from_db()  # still there


def test_the_admin_and_the_header_link_to_the_dashboard(staff_client):
    assert 'href="/dashboard/">Operator dashboard</a>' in staff_client.get("/admin/").content.decode()
    assert 'href="/dashboard/">Dashboard</a>' in staff_client.get("/labels/").content.decode()
