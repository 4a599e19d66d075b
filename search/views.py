"""HTML views. Same selectors as the API; htmx requests get just the changed fragment."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails

from search import selectors
from search.params import InvalidParams, SearchParams, parse_search_params

PAGE_STEP = 20
CONCEPT_KINDS = (("task", "Mentions tasks"), ("dataset", "Mentions datasets"))


class HtmxHttpRequest(HttpRequest):
    """The request as django_htmx's middleware leaves it (for the type checker only)."""

    htmx: HtmxDetails


def search_page(request: HtmxHttpRequest) -> HttpResponse:
    errors: dict[str, str] = {}
    try:
        params = parse_search_params(request.GET, strict=False)
    except InvalidParams as exc:
        errors, params = exc.errors, SearchParams(query=request.GET.get("q", "")[:1000])
    if "k" not in request.GET:
        params = replace(params, k=PAGE_STEP)
    result = None if errors else selectors.paper_search(params=params)
    facets = {} if errors else selectors.facet_counts(params.filters)
    more_query = ""
    if result and len(result.results) >= params.k and params.k < 100:
        query = dict(request.GET.lists())
        query["k"] = [str(min(params.k + PAGE_STEP, 100))]
        more_query = urlencode(query, doseq=True)
    context = {
        "params": params, "raw_query": request.GET.get("q", ""), "result": result,
        "errors": errors, "more_query": more_query,
        "modes": ("hybrid", "semantic", "keyword"), "facets": facets,
        "selected": {
            "category": set(params.filters.categories), "task": set(params.filters.tasks),
            "method": set(params.filters.methods), "dataset": set(params.filters.datasets),
            "concept": set(params.filters.concepts),
        },
    }
    template = "search/search.html#body" if request.htmx else "search/search.html"
    return render(request, template, context)


def embedding_status(request: HttpRequest) -> HttpResponse:
    """Polled by the page while embeddings are being computed."""
    coverage = [c for c in selectors.embedding_coverage()
                if c.active or not (c.complete or c.superseded)]
    pending = any(not c.complete for c in coverage)
    return render(request, "search/_status.html", {"coverage": coverage, "pending": pending})


def labels_page(request: HttpRequest) -> HttpResponse:
    """Browse the task / method / dataset labels that sources provided, and the task / dataset
    names found in the papers' text, with paper counts."""
    found = selectors.concept_counts()
    return render(request, "search/labels.html", {
        "labels": selectors.label_counts(),
        "found": [(title, found.get(kind, [])) for kind, title in CONCEPT_KINDS]})
