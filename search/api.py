"""REST API (v1). Each view parses input, calls a selector or service, picks the rendering."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, Throttled, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from search import selectors, services
from search.api_docs import errors, k_parameter, paginated
from search.models import Job, Paper
from search.operations import latency
from search.params import FILTER_NAMES, PRECISIONS, InvalidParams, parse_search_params


def exception_handler(exc, context):
    """DRF's handler, plus our parameter errors as 400 with one message per field."""
    if isinstance(exc, InvalidParams):
        return Response({"detail": "invalid parameters", "errors": exc.errors},
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, selectors.NotReady):  # the data is being computed: retry later
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, Throttled):  # counted for the dashboard's "throttled requests"
        latency.record_throttled()
    return drf_exception_handler(exc, context)


class PaperSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Paper
        fields = ["id", "arxiv_id", "doi", "title", "abstract", "authors", "categories", "venue",
                  "published", "first_seen", "tasks", "methods", "datasets", "concepts", "url"]

    def get_url(self, paper: Paper) -> str:
        return paper.external_url


class ResultSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="paper.id")
    arxiv_id = serializers.CharField(source="paper.arxiv_id", allow_null=True)
    title = serializers.CharField(source="paper.title")
    authors = serializers.ListField(source="paper.authors", child=serializers.CharField())
    categories = serializers.ListField(source="paper.categories", child=serializers.CharField())
    concepts = serializers.ListField(source="paper.concepts", child=serializers.CharField(),
                                     help_text="task / dataset names found in the text")
    published = serializers.DateField(source="paper.published", allow_null=True)
    url = serializers.CharField(source="paper.external_url")
    score = serializers.FloatField()
    explanation = serializers.SerializerMethodField()

    def get_explanation(self, item) -> dict | None:
        return item.details.get("explanation")

    def to_representation(self, item):
        data = super().to_representation(item)
        if data.get("explanation") is None:
            data.pop("explanation", None)
        return data


def result_data(item: selectors.ScoredPaper) -> dict:
    """What ResultSerializer(item).data is, built directly: a result list is the API's hot
    path, and DRF's field machinery cost ~0.5 ms per 10 results there (tests/search
    test_api checks the two agree)."""
    paper = item.paper
    data = {
        "id": int(paper.id),
        "arxiv_id": None if paper.arxiv_id is None else str(paper.arxiv_id),
        "title": str(paper.title),
        "authors": [str(a) for a in paper.authors],
        "categories": [str(c) for c in paper.categories],
        "concepts": [str(c) for c in paper.concepts],
        "published": None if paper.published is None else paper.published.isoformat(),
        "url": str(paper.external_url),
        "score": float(item.score),
    }
    explanation = item.details.get("explanation")
    if explanation is not None:
        data["explanation"] = explanation
    return data


def filter_parameters() -> list[OpenApiParameter]:
    many = {"category", "author", "task", "method", "dataset", "concept"}
    described = {"concept": "a task or dataset name found in the text, e.g. "
                            "task:Semantic Segmentation (repeat: papers naming all)"}
    return [
        OpenApiParameter("published_after", OpenApiTypes.DATE),
        OpenApiParameter("published_before", OpenApiTypes.DATE),
        *[OpenApiParameter(name, str, many=name in many, description=described.get(name, ""))
          for name in FILTER_NAMES if not name.startswith("published")],
    ]


def results_payload(result: selectors.SearchResult, request: Request) -> dict:
    payload = {
        "mode": result.mode,
        "count": len(result.results),
        "results": [result_data(item) for item in result.results],
    }
    if result.notice:
        payload["notice"] = result.notice
    if request.user.is_staff:
        payload["debug"] = result.plan
    return payload


class SearchAPI(APIView):
    @extend_schema(
        summary="Search papers",
        parameters=[
            OpenApiParameter("q", str, description="query; supports au:, cat:, year:, venue:, "
                             "task:, method:, dataset: terms and websearch syntax for keywords"),
            k_parameter(),
            OpenApiParameter("mode", str, enum=["semantic", "keyword", "hybrid"]),
            OpenApiParameter("semantic_weight", float, description="hybrid: 0..1, default 0.3"),
            OpenApiParameter("precision", str, enum=list(PRECISIONS),
                             description="vector precision mode; default set by the operator"),
            *filter_parameters(),
        ],
        responses={200: OpenApiTypes.OBJECT, **errors(400, 409)},
    )
    def get(self, request: Request) -> Response:
        params = parse_search_params(request.query_params)
        result = selectors.paper_search(params=params)
        body = results_payload(result, request)
        body["query"] = params.query
        return Response(body)


class PaperListAPI(APIView):
    @extend_schema(
        summary="List papers (newest first), or look one up by arXiv id / DOI",
        parameters=[OpenApiParameter("arxiv_id", str), OpenApiParameter("doi", str),
                    OpenApiParameter("page", int)],
        responses={200: paginated(PaperSerializer, "PaperPage"), **errors(400, 404)},
    )
    def get(self, request: Request) -> Response:
        unknown = set(request.query_params) - {"arxiv_id", "doi", "page", "format"}
        if unknown:
            raise ValidationError({"unknown": f"unknown parameter(s): {', '.join(sorted(unknown))}"})
        qs = selectors.paper_list(arxiv_id=request.query_params.get("arxiv_id", "").strip(),
                                  doi=request.query_params.get("doi", "").strip())
        paginator = PageNumberPagination()
        page: list[Paper] | None = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(PaperSerializer(page, many=True).data)


def paper_or_404(pk: int) -> Paper:
    paper = selectors.paper_get(pk=pk)
    if paper is None:
        raise NotFound(f"no paper with id {pk}")
    return paper


class PaperDetailAPI(APIView):
    @extend_schema(summary="One paper", responses={200: PaperSerializer, **errors(404)})
    def get(self, request: Request, id: int) -> Response:  # noqa: A002 - the contract's name
        return Response(PaperSerializer(paper_or_404(id)).data)


class JobSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField()

    class Meta:
        model = Job
        fields = ["id", "kind", "status", "description", "total", "processed", "progress",
                  "stats", "errors", "message", "created_at", "started_at", "finished_at"]


class IngestAPI(APIView):
    permission_classes = [IsAdminUser]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Upload a papers file (arXiv daily JSONL, Kaggle arXiv snapshot, or Paperscope "
                "JSONL; optionally gzipped); returns the job that ingests it",
        request=inline_serializer("IngestUpload", {"file": serializers.FileField()}),
        responses={202: JobSerializer, **errors(400, 401, 403, 413)},
    )
    def post(self, request: Request) -> Response:
        limit = settings.INGEST_MAX_UPLOAD_BYTES
        try:
            announced = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            announced = 0
        if announced > limit + 64 * 1024:  # (multipart framing on top of the file)
            # refused from the header, before a byte of the body is read or spooled to disk
            return Response({"detail": f"the upload is larger than {limit // 2**20} MiB"},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": "attach the papers file as multipart field 'file'"})
        if upload.size > settings.INGEST_MAX_UPLOAD_BYTES:
            raise ValidationError({"file": f"file is larger than "
                                           f"{settings.INGEST_MAX_UPLOAD_BYTES // 2**20} MiB"})
        job = services.ingest_job_from_upload(upload=upload, user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": f"/api/v1/jobs/{job.pk}"})


class JobDetailAPI(APIView):
    # staff only: a job shows uploaded file names and their rows' errors
    permission_classes = [IsAdminUser]

    @extend_schema(summary="Progress and per-row errors of a job (staff)",
                   responses={200: JobSerializer, **errors(401, 403, 404)})
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        job = selectors.job_get(pk=id)
        if job is None:
            raise NotFound(f"no job with id {id}")
        return Response(JobSerializer(job).data)
