"""What the OpenAPI schema says beyond the happy path: the error bodies every endpoint can
answer with, and parameter bounds, so the schema matches what is served."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from search.params import MAX_K

ERROR = inline_serializer("Error", {
    "detail": serializers.CharField(),
    "errors": serializers.DictField(child=serializers.CharField(), required=False,
                                    help_text="one message per invalid field"),
    "reason": serializers.CharField(required=False, help_text="why a service is unavailable"),
})
_MEANING = {
    400: "invalid parameters: `errors` names each field",
    401: "no or bad credentials (send `Authorization: Token <key>`)",
    403: "signed in, but not allowed (staff only)",
    404: "no such object",
    409: "the data is still being prepared (e.g. embeddings); retry later",
    413: "the upload is larger than the configured limit",
    429: "rate limited; `Retry-After` says when to retry",
    503: "a backing service (database, Redis) is down; `Retry-After` says when to retry",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Responses for these status codes (429 and 503 apply to every endpoint and are added)."""
    return {code: OpenApiResponse(ERROR, description=_MEANING[code])
            for code in sorted({*codes, 429, 503})}


def k_parameter(default: int = 10) -> OpenApiParameter:
    return OpenApiParameter("k", {"type": "integer", "minimum": 1, "maximum": MAX_K},
                            description=f"number of results, 1-{MAX_K} (default {default})")


def paginated(serializer_class: type[serializers.Serializer], name: str):
    """The body PageNumberPagination serves: count, next, previous, results."""
    return inline_serializer(name, {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer_class(many=True),
    })
