"""A library's new papers as an Atom feed at a secret URL (Django's syndication framework).

The URL carries the library's feed_token, so a feed reader needs no sign-in and the library
can stay private; the entries are the library's feed (recommend.feed: new papers of the last
FEED_DEFAULT_DAYS days ranked by its model, minus what its owner saved, rated or was mailed),
each with its one-line reason before the abstract.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.feedgenerator import Atom1Feed

from recommend import feed
from recommend.models import Library
from search.params import InvalidParams, SearchFilters
from search.selectors import NotReady, ScoredPaper

ATOM_ENTRIES = 30


class LibraryAtom(Feed):
    feed_type = Atom1Feed

    def get_object(self, request, token: str) -> Library:
        library = Library.objects.filter(feed_token=token).select_related("owner").first()
        if library is None:
            raise Http404("no feed at this address")
        return library

    def title(self, library: Library) -> str:
        return f"Paperscope: new for “{library.name}”"

    def subtitle(self, library: Library) -> str:
        return library.description or f"New papers ranked by the library {library.name!r}"

    def link(self, library: Library) -> str:
        return reverse("library", args=[library.pk])

    def items(self, library: Library) -> list[ScoredPaper]:
        since = timezone.now() - timedelta(days=settings.FEED_DEFAULT_DAYS)
        try:
            model, _ = feed.reader_model(library.owner, library)
            results, _ = feed.rank_new(user=library.owner, library=library, model=model, since=since,
                                       k=ATOM_ENTRIES, filters=SearchFilters())
        except (InvalidParams, NotReady):  # empty library, model not trained yet: an empty feed
            return []
        return results

    def item_title(self, item: ScoredPaper) -> str:
        return item.paper.title

    def item_description(self, item: ScoredPaper) -> str:
        reason = item.details.get("explanation", {}).get("reason", "")
        return f"Why: {reason}\n\n{item.paper.abstract}" if reason else item.paper.abstract

    def item_link(self, item: ScoredPaper) -> str:
        return reverse("paper", args=[item.paper.pk])

    def item_guid(self, item: ScoredPaper) -> str:
        return f"tag:paperscope,2026:paper/{item.paper.pk}"

    item_guid_is_permalink = False

    def item_author_name(self, item: ScoredPaper) -> str:
        authors = item.paper.authors
        return ", ".join(authors[:5]) + (" et al." if len(authors) > 5 else "") if authors else ""

    def item_updateddate(self, item: ScoredPaper):
        return item.paper.created_at

    def item_pubdate(self, item: ScoredPaper):
        return item.paper.created_at

    def item_categories(self, item: ScoredPaper) -> list[str]:
        return list(item.paper.categories)
