"""HTML views of the recommend app: a paper with its "similar by aspect" tabs, and "more like
these". The same parsers (recommend.params) and selectors as the API (recommend.api);
htmx requests for a tab get just the changed fragment."""

from __future__ import annotations

import math

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from recommend import facets, ordering
from recommend.params import (
    DEFAULT_ASPECTS,
    WEIGHT_PREFIX,
    SimilarParams,
    paper_id,
    parse_recommend,
    parse_similar,
)
from recommend.reader_views import reader_state
from search.models import Paper
from search.params import InvalidParams
from search.selectors import NotReady, paper_get
from search.views import CONCEPT_KINDS, HtmxHttpRequest

RECOMMEND_PAGE_K = 20


def paper_page(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    paper = paper_get(pk=pk)
    if paper is None:
        raise Http404("no such paper")
    aspects = ordering.similar_names()
    errors: dict[str, str] = {}
    try:
        params = parse_similar(request.GET, aspects=aspects, strict=False)
    except InvalidParams as exc:
        errors, params = exc.errors, SimilarParams()
    similar, notice = None, ""
    if not errors:
        try:
            similar = ordering.similar(paper=paper, aspect=params.aspect, k=params.k,
                                       filters=params.filters, offset=params.offset,
                                       candidates=params.candidates)
        except NotReady as exc:
            notice = str(exc)
    context = {"paper": paper, "similar": similar, "notice": notice, "errors": errors,
               "aspect": params.aspect, "aspects": aspects, "concept_kinds": CONCEPT_KINDS,
               "facets": facets.FACETS, "offset": params.offset, "k": params.k,
               "prev_offset": max(0, params.offset - params.k),
               "state": reader_state(request.user, [paper.pk])}
    template = "recommend/paper.html#similar" if request.htmx else "recommend/paper.html"
    return render(request, template, context)


def recommend_page(request: HttpRequest) -> HttpResponse:
    aspects = ordering.similar_names()
    context: dict = {"errors": {}, "notice": "", "result": None}
    weights = dict(DEFAULT_ASPECTS)
    if not request.GET.getlist("positive"):
        context["notice"] = ("Pick papers first: tick them in the search results and choose "
                             "“More like these”.")
    else:
        try:
            wanted = parse_recommend(request.GET, aspects=aspects, default_k=RECOMMEND_PAGE_K,
                                     strict=False)
            weights = wanted.aspects
            context["result"] = ordering.recommend(wanted)
        except InvalidParams as exc:
            context["errors"] = exc.errors
            weights = _weights_as_given(request, aspects) or weights
        except NotReady as exc:
            context["notice"] = str(exc)
    # the examples the form carries on (ids that are not ids are dropped: they are reported)
    positive, negative = _ids(request.GET.getlist("positive")), _ids(request.GET.getlist("negative"))
    context.update({
        "weights": [(a, weights.get(a, 0.0)) for a in aspects],
        "positives": Paper.objects.filter(pk__in=positive).only("pk", "title"),
        "negatives": Paper.objects.filter(pk__in=negative).only("pk", "title"),
    })
    return render(request, "recommend/recommend.html", context)


def _ids(values: list[str]) -> list[int]:
    return [pid for pid in map(paper_id, values) if pid is not None]


def _weights_as_given(request: HttpRequest, aspects: list[str]) -> dict[str, float]:
    """The sliders' positions after an error: the numbers given (for display only; the
    parser said what is wrong with them)."""
    out = {}
    for aspect in aspects:
        try:
            weight = float(request.GET.get(WEIGHT_PREFIX + aspect, ""))
        except ValueError:
            continue
        if math.isfinite(weight):
            out[aspect] = weight
    return out
