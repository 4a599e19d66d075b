"""REST API of the recommend app: papers similar to one, by aspect, and recommendations from
examples. The same parsers (recommend.params) and selectors as the pages (recommend.views)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommend import lexical, nearest_names, ordering
from recommend.params import (
    MAX_CANDIDATES,
    MAX_EXAMPLES,
    MAX_OFFSET,
    MAX_WEIGHT,
    parse_recommend,
    parse_similar,
)
from search import selectors as search_selectors
from search.api import filter_parameters, paper_or_404, results_payload
from search.api_docs import errors, k_parameter
from search.models import Paper
from search.params import FILTER_NAMES, MAX_K


class PaperSimilarAPI(APIView):
    @extend_schema(
        summary="Papers similar to this one, overall or by aspect",
        parameters=[OpenApiParameter("aspect", str, description=(
                        "generic (default); the facets background (the problem), method, result "
                        "(matched sentence by sentence); the aspect spaces task, dataset, or one "
                        "the operator added")),
                    k_parameter(),
                    OpenApiParameter("offset", int, description=f"skip the first offset results "
                                                                f"(0..{MAX_OFFSET}): the next page"),
                    OpenApiParameter("candidates", str, description="rank only these paper ids "
                                                                    "(repeated or comma-separated)"),
                    *filter_parameters()],
        responses={200: OpenApiTypes.OBJECT, **errors(400, 404, 409)},
    )
    def get(self, request: Request, id: int) -> Response:  # noqa: A002 - the contract's name
        paper = paper_or_404(id)
        params = parse_similar(request.query_params, aspects=ordering.similar_names())
        result = ordering.similar(paper=paper, aspect=params.aspect, k=params.k,
                                  filters=params.filters, offset=params.offset,
                                  candidates=params.candidates)
        body = results_payload(result, request)
        body.update({"paper": paper.pk, "aspect": params.aspect, "offset": params.offset})
        return Response(body)


class RecommendInput(serializers.Serializer):
    """The request body as the OpenAPI schema shows it. Validation is
    recommend.params.parse_recommend's (shared with the page); keep the bounds in step."""

    positive = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1,
                                     max_length=MAX_EXAMPLES)
    negative = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False,
                                     max_length=MAX_EXAMPLES)
    aspects = serializers.DictField(
        child=serializers.FloatField(min_value=0.0, max_value=MAX_WEIGHT), required=False,
        help_text="aspect or facet -> weight (relative; at least one above 0); facets: background, "
                  "method, result; default {\"generic\": 1}")
    filters = serializers.DictField(
        required=False, help_text=f"filter name -> value or list of values: {', '.join(FILTER_NAMES)}")
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, required=False, default=10)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False, default=0,
                                      help_text="skip the first offset results: the next page")
    candidates = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, allow_null=True,
        max_length=MAX_CANDIDATES, help_text="rank only these papers (rerank); default: search")


class RecommendAPI(APIView):
    @extend_schema(
        summary="Recommend papers from positive and negative examples, weighted by aspect",
        request=RecommendInput,
        responses={200: OpenApiTypes.OBJECT, **errors(400, 409)},
        examples=[OpenApiExample("same method as 12, unlike 40", value={
            "positive": [12], "negative": [40], "aspects": {"method": 1.0},
            "filters": {"published_after": "2025-01-01"}, "k": 10})],
    )
    def post(self, request: Request) -> Response:
        wanted = parse_recommend(request.data, aspects=ordering.similar_names())
        return Response(results_payload(ordering.recommend(wanted), request))


class StatusAPI(APIView):
    """Served by recommend because it reports on both apps: the corpus and its vectors
    (search) and what the rankings still wait for (here)."""

    @extend_schema(summary="Corpus size, embedding coverage per space, and what is still being "
                           "prepared", responses={200: OpenApiTypes.OBJECT, **errors()})
    def get(self, request: Request) -> Response:
        coverage = search_selectors.embedding_coverage()
        return Response({
            "papers": Paper.objects.count(),
            "spaces": [{"name": c.space, "aspect": c.aspect, "active": c.active,
                        "embedded": c.embedded, "total": c.total, "percent": c.percent}
                       for c in coverage],
            "preparing": preparing(coverage),
        })


def preparing(coverage) -> list[str]:
    """What a fresh or growing instance is still computing, in words: until these are done,
    rankings differ from a settled instance's."""
    waiting = [f"vectors of {c.space}: {c.embedded} of {c.total}" for c in coverage
               if c.active and not c.complete]
    if lexical.needs_fit():
        waiting.append("the word model of the word rerank (fitted once the corpus has "
                       f"{lexical.FIT_MIN} papers, refitted when it doubles)")
    if search_selectors.concept_counts_pending():
        waiting.append("the counts of task / dataset names (weighing shared names)")
    if not nearest_names.is_built("task", settings.EMBEDDING_MODEL):
        waiting.append("the embeddings of task names (the 'both about' part of explanations)")
    return waiting
