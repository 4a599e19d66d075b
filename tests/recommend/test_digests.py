"""Digests through a real SMTP server on loopback (aiosmtpd) and a real Celery worker: one mail
per period, a second run sends nothing, a failed delivery is retried with the same papers, and
the next period starts where the last one ended."""

from __future__ import annotations

import email
import socket
from datetime import timedelta
from email.message import Message

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from recommend import digests, tasks, training
from recommend.models import Digest, DigestItem, Library, LibraryPaper, ReaderProfile
from search.models import Paper
from tests.conftest import wait_for

# transactional: the worker thread must see what the test wrote
pytestmark = pytest.mark.django_db(transaction=True)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(settings):
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DIGEST_HOUR = 0
    inbox.controller = controller
    yield inbox
    controller.stop()


@pytest.fixture
def subscriber(day_corpus):
    user = get_user_model().objects.create_user("grace", "grace@example.org", "a long passphrase")
    ReaderProfile.objects.create(user=user, digest="weekly", digest_size=3)
    library = Library.objects.create(owner=user, name="Vision")
    papers = list(Paper.objects.order_by("pk"))
    for paper in papers[:3]:
        LibraryPaper.objects.create(library=library, paper=paper)
    # the library's papers and all but six were added before the reader's last digest window
    Paper.objects.exclude(pk__in=[p.pk for p in papers[-6:]]).update(
        created_at=timezone.now() - timedelta(days=60))
    training.train(user.pk, library)
    return user, library, papers


def body_of(message: Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()


def test_a_digest_arrives_once_and_a_second_run_sends_nothing(smtp, subscriber, celery_worker):
    user, library, papers = subscriber

    tasks.send_due_digests.delay()  # as beat sends it; the worker queues and sends the digest
    wait_for(lambda: Digest.objects.filter(user=user, status="sent").exists(), what="digest sent")
    wait_for(lambda: smtp.messages, what="mail arrives")

    message = smtp.messages[0]
    assert message["To"] == "grace@example.org" and "3 new papers" in message["Subject"]
    assert message["List-Unsubscribe"] and "/digest/unsubscribe/" in message["List-Unsubscribe"]
    text = body_of(message)
    assert "== Vision ==" in text and text.count("Why: ") == 3
    items = list(DigestItem.objects.filter(digest__user=user).select_related("paper"))
    assert len(items) == 3 and all(i.paper.title in text for i in items)
    assert {i.paper_id for i in items} <= {p.pk for p in papers[-6:]}  # only new papers

    # beat runs again (or restarts): nothing is due, nothing is sent
    assert tasks.send_due_digests() == 0
    # a duplicated or retried task for the same period sends nothing either
    assert tasks.send_digest(user_id=user.pk, period=Digest.objects.get().period) == "sent"
    assert len(smtp.messages) == 1 and Digest.objects.count() == 1


def test_a_failed_delivery_is_retried_with_the_same_papers(smtp, subscriber, settings):
    user, library, papers = subscriber
    period = digests.period_of("weekly", timezone.now())
    settings.EMAIL_PORT = _free_port()  # nothing listens there

    with pytest.raises(digests.DeliveryFailed):
        digests.send(user_id=user.pk, period=period)
    digest = Digest.objects.get()
    chosen = list(digest.items.values_list("paper_id", flat=True))
    assert digest.status == "composed" and digest.attempts == 1 and len(chosen) == 3

    settings.EMAIL_PORT = smtp.controller.port
    assert digests.send(user_id=user.pk, period=period) == "sent"
    assert [i.paper.title in body_of(smtp.messages[0]) for i in digest.items.all()] == [True] * 3
    assert list(Digest.objects.get().items.values_list("paper_id", flat=True)) == chosen


def test_the_next_period_starts_where_the_last_ended_and_never_repeats_a_paper(smtp, subscriber):
    user, library, papers = subscriber
    now = timezone.now()
    assert digests.send(user_id=user.pk, period="2026-W01") == "sent"
    first = Digest.objects.get(period="2026-W01")
    first_items = set(first.items.values_list("paper_id", flat=True))

    second = digests.compose(user, "2026-W02")

    assert second.window_start == first.window_end >= now
    # the six new papers were in the first window; the three left are not suggested again
    # (they were added before the second window opened), and the mailed ones never are
    assert not set(second.items.values_list("paper_id", flat=True)) & first_items
    assert second.status == "empty"
    assert digests.send(user_id=user.pk, period="2026-W02") == "empty"
    assert len(smtp.messages) == 1


def test_unsubscribing_from_the_mail_link_turns_digests_off(client, subscriber):
    user, _, _ = subscriber
    token = ReaderProfile.objects.get(user=user).unsubscribe_token
    assert client.get(f"/digest/unsubscribe/{token}/").status_code == 200
    assert ReaderProfile.objects.get(user=user).digest == "weekly"  # a GET only asks
    assert client.post(f"/digest/unsubscribe/{token}/").status_code == 200
    assert ReaderProfile.objects.get(user=user).digest == "off"
    assert digests.due_readers() == []
    assert client.get("/digest/unsubscribe/wrong/").status_code == 404


def test_metrics_show_the_digest_backlog(client, subscriber, settings):
    settings.DIGEST_HOUR = 0
    before = client.get("/metrics").content.decode()
    assert "paperscope_digest_backlog 1.0" in before  # grace's weekly digest is due
    Digest.objects.create(user=subscriber[0], period=digests.period_of("weekly", timezone.now()),
                          window_start=timezone.now(), window_end=timezone.now(), status="sent")
    assert "paperscope_digest_backlog 0.0" in client.get("/metrics").content.decode()
