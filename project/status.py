"""/api/v1/status with the recall auditor's flags.

recommend serves the status (it reports on both apps); the recall audit belongs to search,
which must not import recommend, so project (which wires both) adds the `recall` block here.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from recommend.api import StatusAPI as RecommendStatusAPI
from search.api_docs import errors
from search.operations.audit import recall_status


class StatusAPI(RecommendStatusAPI):
    @extend_schema(summary="Corpus size, embedding coverage per space, what is still being "
                           "prepared, and the recall audit's flags",
                   responses={200: OpenApiTypes.OBJECT, **errors()})
    def get(self, request: Request) -> Response:
        response = super().get(request)
        # {"target", "last_run", "classes": [{space, plan_class, recall_at_10, below_target}],
        #  "below_target": ["<space> <class>", ...]}
        response.data["recall"] = recall_status()
        return response
