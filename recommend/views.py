"""The "more like these" page: the same recommend selector as POST /api/v1/recommend."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from recommend import selectors
from search.models import Paper
from search.selectors import NotReady, aspect_names


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()][: selectors.MAX_EXAMPLES]


def recommend_page(request: HttpRequest) -> HttpResponse:
    positive, negative = _ids(request.GET.getlist("positive")), _ids(request.GET.getlist("negative"))
    aspects = aspect_names()
    weights: list[tuple[str, float]] = []
    for aspect in aspects:
        raw = request.GET.get(f"w_{aspect}", "")
        try:
            weight = min(max(float(raw), 0.0), 1.0) if raw else (1.0 if aspect == "generic" else 0.0)
        except ValueError:
            weight = 0.0
        weights.append((aspect, weight))
    if not any(w for _, w in weights):
        weights = [(a, 1.0 if a == "generic" else 0.0) for a in aspects]
    context: dict = {"weights": weights, "errors": {}, "notice": "", "result": None,
                     "positives": Paper.objects.filter(pk__in=positive).only("pk", "title"),
                     "negatives": Paper.objects.filter(pk__in=negative).only("pk", "title")}
    if not positive:
        context["notice"] = "Pick papers first: tick them in the search results and choose “More like these”."
        return render(request, "recommend/recommend.html", context)
    try:
        context["result"] = selectors.recommend(selectors.RecommendRequest(
            positive=positive, negative=negative,
            aspects={a: w for a, w in weights if w > 0}, k=20))
    except selectors.InvalidRequest as exc:
        context["errors"] = exc.errors
    except NotReady as exc:
        context["notice"] = str(exc)
    return render(request, "recommend/recommend.html", context)
