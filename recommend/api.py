"""REST API of the recommend app: papers similar to one, by aspect, and recommendations from
examples. The same parsers (recommend.params) and selectors as the pages (recommend.views)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommend import selectors
from recommend.params import (
    MAX_CANDIDATES,
    MAX_EXAMPLES,
    MAX_WEIGHT,
    parse_recommend,
    parse_similar,
)
from search.api import filter_parameters, paper_or_404, results_payload
from search.params import FILTER_NAMES, MAX_K
from search.selectors import aspect_names


class PaperSimilarAPI(APIView):
    @extend_schema(
        summary="Papers similar to this one, overall or by aspect",
        parameters=[OpenApiParameter("aspect", str, description="generic (default), task, method, dataset, or an "
                                                                "aspect the operator added"),
                    OpenApiParameter("k", int, description=f"number of results, 1-{MAX_K} (default 10)"),
                    *filter_parameters()],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, id: int) -> Response:  # noqa: A002 - the contract's name
        paper = paper_or_404(id)
        params = parse_similar(request.query_params, aspects=aspect_names())
        result = selectors.paper_similar_explained(paper=paper, aspect=params.aspect,
                                                   k=params.k, filters=params.filters)
        body = results_payload(result, request)
        body.update({"paper": paper.pk, "aspect": params.aspect})
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
        help_text="aspect -> weight (relative; at least one above 0); default {\"generic\": 1}")
    filters = serializers.DictField(
        required=False, help_text=f"filter name -> value or list of values: {', '.join(FILTER_NAMES)}")
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, required=False, default=10)
    candidates = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, allow_null=True,
        max_length=MAX_CANDIDATES, help_text="rank only these papers (rerank); default: search")


class RecommendAPI(APIView):
    @extend_schema(
        summary="Recommend papers from positive and negative examples, weighted by aspect",
        request=RecommendInput,
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("same method as 12, unlike 40", value={
            "positive": [12], "negative": [40], "aspects": {"method": 1.0},
            "filters": {"published_after": "2025-01-01"}, "k": 10})],
    )
    def post(self, request: Request) -> Response:
        wanted = parse_recommend(request.data, aspects=aspect_names())
        return Response(results_payload(selectors.recommend(wanted), request))
