"""POST /api/v1/recommend: papers like the positives, unlike the negatives, per aspect."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommend import selectors
from search.api import results_payload
from search.params import FILTER_NAMES, MAX_K, InvalidParams, parse_filters

MAX_EXAMPLES = selectors.MAX_EXAMPLES


class RecommendInput(serializers.Serializer):
    positive = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1,
                                     max_length=MAX_EXAMPLES)
    negative = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False,
                                     default=list, max_length=MAX_EXAMPLES)
    aspects = serializers.DictField(child=serializers.FloatField(min_value=0.0, max_value=100.0),
                                    required=False, default=lambda: {"generic": 1.0})
    filters = serializers.DictField(required=False, default=dict)
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, required=False, default=10)
    candidates = serializers.ListField(child=serializers.IntegerField(min_value=1),
                                       required=False, allow_null=True, default=None,
                                       max_length=1000)

    def validate_filters(self, value: dict):
        errors: dict[str, str] = {}
        allowed = set(FILTER_NAMES)
        unknown = set(value) - allowed
        if unknown:
            raise serializers.ValidationError(
                f"unknown filter(s): {', '.join(sorted(unknown))}; use {', '.join(sorted(allowed))}")
        filters = parse_filters(value, errors)
        if errors:
            raise serializers.ValidationError(errors)
        return filters


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
        data = RecommendInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            result = selectors.recommend(selectors.RecommendRequest(
                positive=values["positive"], negative=values["negative"],
                aspects=values["aspects"], filters=values["filters"], k=values["k"],
                candidates=values["candidates"]))
        except selectors.InvalidRequest as exc:
            raise InvalidParams(exc.errors) from None
        return Response(results_payload(result, request))
