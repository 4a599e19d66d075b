"""Mail digests: per reader, daily or weekly, the top new papers of each library.

Idempotent by construction:
- one Digest row per (reader, period) — "2026-12-02" for daily, "2026-W49" for weekly — so a
  restarted beat or a duplicated task finds the row and sends nothing new;
- the items are recorded before the mail goes out, so a retried delivery sends the same papers
  (and the same Message-ID, which mail clients deduplicate on);
- sending holds the row's lock and marks it sent in the same transaction: a second worker
  waits, then sees "sent". Only a crash between the server accepting the mail and that
  commit can repeat a mail (at-least-once, with the same Message-ID); none is ever lost;
- the window starts where the reader's previous digest ended, so a paper added in between is
  never skipped; papers once suggested are never suggested again (nor shown in the feed).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from recommend import feed
from recommend.models import Digest, DigestItem, Library, ReaderProfile
from search.params import InvalidParams, SearchFilters
from search.selectors import NotReady

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    pass


def period_of(frequency: str, now: datetime) -> str:
    if frequency == ReaderProfile.Digest.DAILY:
        return now.date().isoformat()
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


def due_readers(now: datetime | None = None) -> list[tuple[int, str]]:
    """(user id, period) of every subscribed reader whose digest of the current period has
    not been sent (or found empty) yet, once the day's DIGEST_HOUR has passed."""
    now = now or timezone.now()
    if now.hour < settings.DIGEST_HOUR:
        return []
    profiles = (ReaderProfile.objects.exclude(digest=ReaderProfile.Digest.OFF)
                .filter(user__is_active=True).exclude(user__email="").values_list("user_id", "digest"))
    wanted = {(uid, period_of(freq, now)) for uid, freq in profiles}
    done = set(Digest.objects.filter(user_id__in=[u for u, _ in wanted])
               .exclude(status=Digest.Status.COMPOSED).values_list("user_id", "period"))
    return sorted(wanted - done)


def _window_start(user) -> datetime:
    last = Digest.objects.filter(user=user).order_by("-window_end").values_list("window_end", flat=True).first()
    # a first digest looks back as far as a first visit to the feed does
    return last or timezone.now() - timedelta(days=settings.FEED_DEFAULT_DAYS)


def compose(user, period: str) -> Digest:
    """The period's digest with its items chosen (once: an existing row is returned as is)."""
    with transaction.atomic():
        existing = Digest.objects.select_for_update().filter(user=user, period=period).first()
        if existing is not None:
            return existing
        start, end = _window_start(user), timezone.now()
        digest = Digest.objects.create(user=user, period=period, window_start=start, window_end=end)
        size = feed.profile_of(user).digest_size
        taken = feed.seen_papers(user)
        rank = 0
        subjects: list[Library | None] = list(Library.objects.filter(owner=user)) or [None]
        for library in subjects:
            try:
                model, _ = feed.reader_model(user, library)
                results, _ = feed.rank_new(user=user, library=library, model=model, since=start, k=size,
                                           filters=SearchFilters(), exclude=taken)
            except (InvalidParams, NotReady) as why:  # an empty library, a model still training
                log.info("digest %s of %s: %s skipped (%s)", period, user, library, why)
                continue
            for item in results:
                rank += 1
                DigestItem.objects.create(digest=digest, paper=item.paper, library=library, rank=rank,
                                          reason=item.details["explanation"]["reason"][:300])
                taken.append(item.paper.pk)
        if rank == 0:
            digest.status = Digest.Status.EMPTY
            digest.save(update_fields=["status"])
        return digest


def send(*, user_id: int, period: str) -> str:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        return "no address"
    digest = compose(user, period)
    failure: Exception | None = None
    with transaction.atomic():
        digest = Digest.objects.select_for_update().get(pk=digest.pk)
        if digest.status != Digest.Status.COMPOSED:
            return digest.status
        try:
            render(digest).send(fail_silently=False)
        except Exception as error:  # SMTP refused / unreachable: retried with the same items
            failure = error
        else:
            digest.status, digest.sent_at = Digest.Status.SENT, timezone.now()
        digest.attempts += 1
        digest.save(update_fields=["status", "sent_at", "attempts"])
    if failure is not None:
        raise DeliveryFailed(f"digest {digest.pk} of {user}: {failure}") from failure
    return digest.status


def render(digest: Digest) -> EmailMultiAlternatives:
    site = settings.SITE_URL
    profile = feed.profile_of(digest.user)
    items = list(digest.items.select_related("paper", "library"))
    groups: dict[str, list[DigestItem]] = {}
    for item in items:
        groups.setdefault(item.library.name if item.library else "Your feed", []).append(item)
    unsubscribe = site + reverse("digest-unsubscribe", args=[profile.unsubscribe_token])
    context = {"digest": digest, "groups": groups, "site": site, "unsubscribe": unsubscribe,
               "settings_url": site + reverse("reader-settings"), "feed_url": site + reverse("feed"),
               "count": len(items)}
    subject = f"Paperscope: {len(items)} new paper{'s' if len(items) != 1 else ''} for you ({digest.period})"
    message = EmailMultiAlternatives(
        subject=subject, body=render_to_string("recommend/digest_email.txt", context),
        to=[digest.user.email],
        headers={"Message-ID": f"<digest-{digest.pk}-{digest.period}@paperscope>",
                 "List-Unsubscribe": f"<{unsubscribe}>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    message.attach_alternative(render_to_string("recommend/digest_email.html", context), "text/html")
    return message
