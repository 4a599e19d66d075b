"""What every page's template may show of the reader: their libraries, for the save button
that search results, paper pages and feeds all carry (templates/partials/paper_actions.html).
Wired here, in project/, so that search's pages show recommend's buttons without search
importing recommend. Lazy: a page without the buttons runs no query."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject


def reader(request) -> dict:
    def libraries():
        from recommend.libraries import libraries_of

        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return []
        return list(libraries_of(user).only("pk", "name"))

    return {"reader_libraries": SimpleLazyObject(libraries)}
