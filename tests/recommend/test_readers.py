"""The reader's loop through the API: libraries, ratings, import / export, the feed, Atom."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from recommend import lexical, training
from recommend.models import Library, ReaderModel
from search.models import Paper

pytestmark = pytest.mark.django_db


def reader(name="ada"):
    user = get_user_model().objects.create_user(name, f"{name}@example.org", "a long passphrase")
    client = APIClient()
    client.force_authenticate(user)
    return user, client


def new_library(client, name="Reading", **extra):
    response = client.post("/api/v1/libraries", {"name": name, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_library_is_created_filled_renamed_and_deleted(corpus):
    _, client = reader()
    library = new_library(client, description="to read")
    paper = Paper.objects.order_by("pk").first()

    added = client.post(f"/api/v1/libraries/{library['id']}/papers", {"paper": paper.pk}, format="json")
    again = client.post(f"/api/v1/libraries/{library['id']}/papers", {"paper": paper.pk}, format="json")
    renamed = client.patch(f"/api/v1/libraries/{library['id']}", {"name": "Later", "is_public": True},
                           format="json")
    detail = client.get(f"/api/v1/libraries/{library['id']}").json()

    assert (added.status_code, added.json()["added"]) == (201, True)
    assert (again.status_code, again.json()["added"]) == (200, False)
    assert renamed.json()["name"] == "Later" and renamed.json()["is_public"] is True
    assert [item["id"] for item in detail["items"]] == [paper.pk]
    assert client.delete(f"/api/v1/libraries/{library['id']}/papers/{paper.pk}").status_code == 204
    assert client.delete(f"/api/v1/libraries/{library['id']}").status_code == 204
    assert not Library.objects.exists()


def test_another_readers_private_library_is_not_found_and_a_public_one_is_readable(corpus):
    _, owner = reader("owner")
    _, other = reader("other")
    private = new_library(owner, "Mine")

    for response in (other.get(f"/api/v1/libraries/{private['id']}"),
                     other.patch(f"/api/v1/libraries/{private['id']}", {"name": "x"}, format="json"),
                     other.post(f"/api/v1/libraries/{private['id']}/papers", {"paper": 1}, format="json"),
                     other.get(f"/api/v1/libraries/{private['id']}/export"),
                     APIClient().get(f"/api/v1/libraries/{private['id']}")):
        assert response.status_code == 404, response.content
    assert other.get("/api/v1/libraries").json()["results"] == []

    owner.patch(f"/api/v1/libraries/{private['id']}", {"is_public": True}, format="json")
    public = other.get(f"/api/v1/libraries/{private['id']}").json()
    assert public["name"] == "Mine" and public["atom_url"] is None  # the secret stays the owner's
    assert other.patch(f"/api/v1/libraries/{private['id']}", {"name": "x"}, format="json").status_code == 404


def test_bad_input_gets_a_4xx_with_the_reason(corpus):
    _, client = reader()
    library = new_library(client)
    lid = library["id"]

    unknown = client.post(f"/api/v1/libraries/{lid}/papers", {"paper": 999999}, format="json")
    not_an_id = client.post(f"/api/v1/libraries/{lid}/papers", {"paper": "abc"}, format="json")
    rating = client.put(f"/api/v1/ratings/{Paper.objects.first().pk}", {"value": 3}, format="json")
    duplicate = client.post("/api/v1/libraries", {"name": "Reading"}, format="json")
    nameless = client.post("/api/v1/libraries", {"name": "  "}, format="json")
    broken = client.post(f"/api/v1/libraries/{lid}/import",
                         {"file": _upload("@article{oops, title = {unclosed")}, format="multipart")
    empty_feed = client.get("/api/v1/feed", {"library": lid})
    bad_since = client.get("/api/v1/feed", {"since": "yesterday"})

    assert unknown.status_code == 400 and "unknown paper id: 999999" in unknown.json()["errors"]["paper"]
    assert not_an_id.status_code == 400
    assert rating.status_code == 400 and "1 (thumbs up) or -1" in rating.json()["errors"]["value"]
    assert duplicate.status_code == 400 and "already have" in duplicate.json()["errors"]["name"]
    assert nameless.status_code == 400
    assert broken.status_code == 400 and "BibTeX" in broken.json()["errors"]["file"]
    assert empty_feed.status_code == 400 and "no papers yet" in empty_feed.json()["errors"]["library"]
    assert bad_since.status_code == 400 and "since" in bad_since.json()["errors"]
    assert APIClient().get("/api/v1/feed").status_code in (401, 403)


def _upload(text, name="library.bib"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, text.encode(), content_type="application/x-bibtex")


def test_a_rating_is_changeable_and_can_be_taken_back(corpus):
    user, client = reader()
    paper = Paper.objects.first()
    assert client.put(f"/api/v1/ratings/{paper.pk}", {"value": 1}, format="json").json()["value"] == 1
    assert client.put(f"/api/v1/ratings/{paper.pk}", {"value": -1}, format="json").json()["value"] == -1
    assert user.ratings.get().value == -1
    assert client.delete(f"/api/v1/ratings/{paper.pk}").status_code == 204
    assert client.delete(f"/api/v1/ratings/{paper.pk}").status_code == 404


def test_bibtex_round_trip_and_import_by_arxiv_id_reports_the_unknown(corpus):
    import bibtexparser

    _, client = reader()
    source = new_library(client, "Source")
    papers = list(Paper.objects.exclude(arxiv_id=None).order_by("pk")[:4])
    imported = client.post(f"/api/v1/libraries/{source['id']}/import",
                           {"arxiv_ids": [f"https://arxiv.org/abs/{papers[0].arxiv_id}v2",
                                          *[p.arxiv_id for p in papers[1:]], "2999.99999"]},
                           format="json").json()
    assert imported["added"] == 4 and imported["unknown"] == ["2999.99999"]

    exported = client.get(f"/api/v1/libraries/{source['id']}/export", {"format": "bibtex"})
    assert exported["Content-Type"].startswith("application/x-bibtex")
    entries = bibtexparser.loads(exported.content.decode()).entries
    assert sorted(e["eprint"] for e in entries) == sorted(p.arxiv_id for p in papers)
    assert {e["title"] for e in entries} == {p.title for p in papers}
    assert len({e["ID"] for e in entries}) == 4

    target = new_library(client, "Target")
    text = exported.content.decode() + "\n@misc{nowhere, title = {A paper this instance does not hold}}\n"
    report = client.post(f"/api/v1/libraries/{target['id']}/import", {"file": _upload(text)},
                         format="multipart").json()
    assert report["added"] == 4 and report["unknown"] == ["nowhere"]
    assert client.get(f"/api/v1/libraries/{source['id']}/export", {"format": "csv"}).status_code == 400


def _age_corpus(new_ids, days_old=30):
    """Every paper but `new_ids` was added long ago: the feed's window holds only new_ids."""
    Paper.objects.exclude(pk__in=new_ids).update(created_at=timezone.now() - timedelta(days=days_old))


def test_the_feed_ranks_new_papers_by_the_library_and_explains_why(corpus):
    user, client = reader()
    library = new_library(client)
    sr = list(Paper.objects.filter(tasks__contains=["Image_Super-Resolution"]).order_by("pk"))
    assert len(sr) >= 3
    saved, new_sr = sr[:-1], sr[-1]
    for paper in saved:
        client.post(f"/api/v1/libraries/{library['id']}/papers", {"paper": paper.pk}, format="json")
    others = list(Paper.objects.exclude(pk__in=[p.pk for p in sr]).order_by("pk")[:8])
    _age_corpus([new_sr.pk, *[p.pk for p in others]])
    lexical.fit_model()
    training.train(user.pk, Library.objects.get())

    body = client.get("/api/v1/feed", {"library": library["id"], "days": 7, "k": 5}).json()

    ids = [r["id"] for r in body["results"]]
    assert body["model"]["kind"] in ("linear", "centroid") and body["model"]["current"]
    assert len(ids) == 5 and not set(ids) & {p.pk for p in saved}  # saved papers never come back
    assert set(ids) <= {new_sr.pk, *[p.pk for p in others]}  # only the window's papers
    assert ids[0] == new_sr.pk  # the one like the library is first
    why = body["results"][0]["explanation"]
    assert why["reason"] and why["like"] and why["like"][0]["id"] in {p.pk for p in saved}
    assert why["aspect"] in ("generic", "task", "method", "dataset")

    # rated papers do not come back either; a filter applies and never comes back short
    client.put(f"/api/v1/ratings/{new_sr.pk}", {"value": 1}, format="json")
    rated = client.get("/api/v1/feed", {"library": library["id"], "days": 7, "k": 5}).json()
    assert new_sr.pk not in [r["id"] for r in rated["results"]] and len(rated["results"]) == 5
    category = others[0].categories[0]
    matching = [p.pk for p in others if category in p.categories]
    filtered = client.get("/api/v1/feed", {"library": library["id"], "days": 7, "k": 20,
                                           "category": category}).json()
    assert sorted(r["id"] for r in filtered["results"]) == sorted(matching)


def test_without_a_trained_model_the_feed_uses_the_centroid_and_queues_training(corpus):
    user, client = reader()
    library = new_library(client)
    paper = Paper.objects.order_by("pk").first()
    client.post(f"/api/v1/libraries/{library['id']}/papers", {"paper": paper.pk}, format="json")
    ReaderModel.objects.all().delete()

    body = client.get("/api/v1/feed", {"library": library["id"], "days": 7}).json()

    assert body["model"] == {"kind": "centroid", "provisional": True, "current": False}
    assert body["results"] and paper.pk not in [r["id"] for r in body["results"]]


def test_the_library_atom_feed_is_valid_at_its_secret_address(corpus, client):
    import feedparser

    user, api = reader()
    library = new_library(api)
    for paper in Paper.objects.order_by("pk")[:3]:
        api.post(f"/api/v1/libraries/{library['id']}/papers", {"paper": paper.pk}, format="json")
    training.train(user.pk, Library.objects.get())
    token = Library.objects.get().feed_token

    response = client.get(f"/libraries/atom/{token}.xml")
    parsed = feedparser.parse(response.content)

    assert response.status_code == 200 and response["Content-Type"].startswith("application/atom+xml")
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10" and "Reading" in parsed.feed.title
    assert parsed.entries and all(e.title and e.link and e.id for e in parsed.entries)
    assert "Why:" in parsed.entries[0].summary
    assert client.get("/libraries/atom/not-the-token.xml").status_code == 404
