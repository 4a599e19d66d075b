"""The reader's pages without JavaScript: sign up, save, rate, libraries, import, settings, the
feed, and the messages a reader gets for bad input (never a 500)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from recommend import training
from recommend.models import Library, LibraryPaper, Rating
from search.models import Paper

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    user = get_user_model().objects.create_user("lin", "lin@example.org", "a long passphrase")
    client.force_login(user)
    return user


def test_sign_up_with_allauth_then_the_feed_asks_for_papers_first(client, db):
    response = client.post("/accounts/signup/", {"email": "new@example.org", "username": "newbie",
                                                 "password1": "a long passphrase", "password2": "a long passphrase"})
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newbie")
    assert client.session["_auth_user_id"] == str(user.pk)

    page = client.get("/feed/")
    assert page.status_code == 200
    assert "not saved or rated a paper yet" in page.content.decode()

    client.post("/accounts/logout/")
    assert client.get("/feed/").status_code == 302  # signed out: sent to sign in
    signin = client.post("/accounts/login/", {"login": "new@example.org", "password": "a long passphrase"})
    assert signin.status_code == 302 and client.session["_auth_user_id"] == str(user.pk)


def test_saving_and_rating_without_javascript_redirect_back(client, signed_in, day_corpus):
    paper = Paper.objects.order_by("pk").first()

    saved = client.post("/libraries/save", {"paper": paper.pk, f"new_library_{paper.pk}": "Later",
                                            "next": f"/papers/{paper.pk}/"})
    library = Library.objects.get(owner=signed_in)
    again = client.post("/libraries/save", {"paper": paper.pk, f"library_{paper.pk}": library.pk,
                                            "next": "https://elsewhere.example/"})
    rated = client.post(f"/ratings/{paper.pk}", {"value": "1", "next": "/"})
    page = client.get(f"/papers/{paper.pk}/").content.decode()

    assert saved.status_code == 302 and saved["Location"] == f"/papers/{paper.pk}/"
    assert again["Location"] == f"/papers/{paper.pk}/"  # never redirected off the site
    assert library.name == "Later" and LibraryPaper.objects.filter(library=library, paper=paper).count() == 1
    assert rated.status_code == 302 and Rating.objects.get(user=signed_in).value == 1
    assert 'aria-pressed="true"' in page and "in <a" in page  # the page shows both

    client.post(f"/ratings/{paper.pk}", {"value": "1"})  # the same thumb again takes it back
    assert not Rating.objects.exists()


def test_the_htmx_buttons_swap_just_themselves(client, signed_in, day_corpus):
    paper = Paper.objects.order_by("pk").first()
    response = client.post("/libraries/save", {"paper": paper.pk, f"new_library_{paper.pk}": "Later"},
                           HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith(f'<div class="actions" id="actions-{paper.pk}"')
    assert "in <a" in html
    bad = client.post("/ratings/999999", {"value": "1"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "unknown paper id" in bad.content.decode()


def test_a_library_page_imports_exports_and_refuses_a_broken_file(client, signed_in, day_corpus):
    client.post("/libraries/", {"name": "Import here"})
    library = Library.objects.get(owner=signed_in)
    papers = list(Paper.objects.order_by("pk")[:2])

    client.post(f"/libraries/{library.pk}/edit", {"action": "import",
                                                  "arxiv_ids": f"{papers[0].arxiv_id}, 2999.00001"})
    broken = client.post(f"/libraries/{library.pk}/edit", {
        "action": "import", "file": SimpleUploadedFile("x.bib", b"this is not bibtex")}, follow=True)
    page = client.get(f"/libraries/{library.pk}/").content.decode()
    bib = client.get(f"/libraries/{library.pk}/library.bib")

    assert broken.status_code == 200 and "no BibTeX entries found" in broken.content.decode()
    assert papers[0].title in page
    assert bib.status_code == 200 and papers[0].arxiv_id in bib.content.decode()


def test_another_readers_private_library_page_is_not_found(client, signed_in, day_corpus):
    other = get_user_model().objects.create_user("other", "o@example.org", "a long passphrase")
    private = Library.objects.create(owner=other, name="Secret")
    public = Library.objects.create(owner=other, name="Shared", is_public=True)
    assert client.get(f"/libraries/{private.pk}/").status_code == 404
    assert client.get(f"/libraries/{private.pk}/library.bib").status_code == 404
    assert client.post(f"/libraries/{private.pk}/edit", {"action": "delete", "confirm": "Secret"}).status_code == 404
    assert client.get(f"/libraries/{public.pk}/").status_code == 200
    assert Library.objects.filter(pk=private.pk).exists()


def test_the_settings_page_makes_an_api_token_shown_once(client, signed_in, day_corpus):
    page = client.post("/accounts/settings/", {"action": "token"}).content.decode()
    key = page.split('id="api-token">')[1].split("<")[0]
    assert len(key) == 40
    api = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/libraries").status_code == 200
    assert key not in client.get("/accounts/settings/").content.decode()

    client.post("/accounts/settings/", {"action": "digest", "digest": "daily", "digest_size": "7"})
    assert signed_in.reader.digest == "daily" and signed_in.reader.digest_size == 7


def test_a_keyword_channel_is_trained_from_its_keywords_and_ranks_the_feed(client, signed_in, day_corpus):
    from recommend import lexical

    lexical.fit_model()
    client.post("/libraries/", {"name": "Sonar", "keywords": "sonar, underwater, marine debris"})
    channel = Library.objects.get(owner=signed_in)
    row = training.train(signed_in.pk, channel)
    assert row is not None and row.positives >= 1  # seeded by the papers its keywords find

    page = client.get(f"/feed/?library={channel.pk}&days=30").content.decode()
    assert "Why:" in page
    first = page.split('class="title"')[1]
    assert "sonar" in first.lower() or "marine" in first.lower() or "underwater" in first.lower()


def test_the_feed_page_shows_new_papers_with_reasons_and_a_clear_message_when_empty(client, signed_in, day_corpus):
    library = Library.objects.create(owner=signed_in, name="Vision")
    empty = client.get(f"/feed/?library={library.pk}").content.decode()
    assert "has no papers yet" in empty

    for paper in Paper.objects.order_by("pk")[:3]:
        LibraryPaper.objects.create(library=library, paper=paper)
    training.train(signed_in.pk, library)
    page = client.get(f"/feed/?library={library.pk}&days=30")
    html = page.content.decode()
    assert page.status_code == 200 and html.count('<li class="result">') == 20
    assert html.count("Why:") == 20
    assert client.get("/feed/?days=abc").status_code == 200  # a bad window is a message on the page
    assert "days must be a whole number" in client.get("/feed/?days=abc").content.decode()
