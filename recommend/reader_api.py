"""REST API of the reader's loop: libraries, their papers, import / export, ratings, the feed.

Token or session auth. A reader sees only their own private libraries: another reader's
private library is a 404 (its existence is not revealed), a public one is readable by anyone
with its id. The same services (recommend.libraries, recommend.bibtex) and selector
(recommend.feed) as the pages.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommend import bibtex, feed, libraries
from recommend.libraries import LibraryNotFound
from recommend.models import Library, LibraryPaper
from recommend.params import parse_feed
from search.api import ResultSerializer, filter_parameters
from search.api_docs import errors, k_parameter
from search.params import InvalidParams


class LibrarySerializer(serializers.ModelSerializer):
    papers = serializers.SerializerMethodField(help_text="number of papers")
    atom_url = serializers.SerializerMethodField(help_text="the secret Atom feed (owner only)")

    class Meta:
        model = Library
        fields = ["id", "name", "description", "keywords", "is_public", "papers", "created_at",
                  "atom_url"]
        read_only_fields = ["id", "created_at", "papers", "atom_url"]

    def get_papers(self, library: Library) -> int:
        return getattr(library, "n_papers", None) or LibraryPaper.objects.filter(library=library).count()

    def get_atom_url(self, library: Library) -> str | None:
        request = self.context.get("request")
        if request is None or request.user.pk != library.owner_id:
            return None
        return request.build_absolute_uri(f"/libraries/atom/{library.feed_token}.xml")


def _library_or_404(request: Request, pk: int, *, write: bool) -> Library:
    try:
        if write:
            return libraries.library_for_owner(request.user, pk)
        return libraries.library_for_reader(request.user, pk)
    except LibraryNotFound as error:
        raise Http404(str(error)) from None


def _changes(data) -> dict:
    if not hasattr(data, "get"):
        raise InvalidParams({"body": "send a JSON object"})
    out = {}
    for name in ("name", "description", "keywords"):
        if name in data:
            out[name] = data.get(name)
    if "is_public" in data:
        value = data.get("is_public")
        if value not in (True, False, "true", "false", "1", "0", 1, 0):
            raise InvalidParams({"is_public": "true or false"})
        out["is_public"] = value in (True, "true", "1", 1)
    return out


class LibraryListAPI(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Your libraries", responses={200: LibrarySerializer(many=True), **errors(401)})
    def get(self, request: Request) -> Response:
        from django.db.models import Count

        rows = libraries.libraries_of(request.user).annotate(n_papers=Count("entries"))
        return Response({"results": LibrarySerializer(rows, many=True, context={"request": request}).data})

    @extend_schema(summary="Create a library (a topic channel when it has keywords)",
                   request=LibrarySerializer, responses={201: LibrarySerializer, **errors(400, 401)},
                   examples=[OpenApiExample("a channel", value={
                       "name": "GNNs for molecules", "keywords": "graph neural networks, molecules"})])
    def post(self, request: Request) -> Response:
        changes = _changes(request.data)
        library = libraries.library_create(user=request.user, name=changes.get("name"),
                                           description=changes.get("description", ""),
                                           keywords=changes.get("keywords", ""),
                                           is_public=changes.get("is_public", False))
        return Response(LibrarySerializer(library, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class LibraryDetailAPI(APIView):
    @extend_schema(summary="A library and its papers (yours, or a public one)",
                   responses={200: OpenApiTypes.OBJECT, **errors(404)})
    def get(self, request: Request, id: int) -> Response:  # noqa: A002 - the contract's name
        library = _library_or_404(request, id, write=False)
        body = LibrarySerializer(library, context={"request": request}).data
        entries = LibraryPaper.objects.filter(library=library).select_related("paper")[:1000]
        body["items"] = [{"id": e.paper.pk, "arxiv_id": e.paper.arxiv_id, "title": e.paper.title,
                          "authors": e.paper.authors, "added_at": e.added_at} for e in entries]
        return Response(body)

    @extend_schema(summary="Rename, describe, publish or change the keywords of your library",
                   request=LibrarySerializer, responses={200: LibrarySerializer, **errors(400, 401, 404)})
    def patch(self, request: Request, id: int) -> Response:  # noqa: A002
        library = _library_or_404(request, id, write=True)
        library = libraries.library_update(library=library, **_changes(request.data))
        return Response(LibrarySerializer(library, context={"request": request}).data)

    @extend_schema(summary="Delete your library", responses={204: None, **errors(401, 404)})
    def delete(self, request: Request, id: int) -> Response:  # noqa: A002
        libraries.library_delete(library=_library_or_404(request, id, write=True))
        return Response(status=status.HTTP_204_NO_CONTENT)


PaperRef = inline_serializer("PaperRef", {"paper": serializers.IntegerField()})


class LibraryPapersAPI(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Save a paper to your library", request=PaperRef,
                   responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, **errors(400, 401, 404)})
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        library = _library_or_404(request, id, write=True)
        data = request.data if hasattr(request.data, "get") else {}
        paper = libraries.paper_or_error(data.get("paper"))
        created = libraries.library_add(library=library, paper=paper)
        return Response({"library": library.pk, "paper": paper.pk, "added": created},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class LibraryPaperAPI(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Remove a paper from your library", responses={204: None, **errors(401, 404)})
    def delete(self, request: Request, id: int, paper_id: int) -> Response:  # noqa: A002
        library = _library_or_404(request, id, write=True)
        if not libraries.library_remove(library=library, paper_id=paper_id):
            raise Http404(f"paper {paper_id} is not in library {library.pk}")
        return Response(status=status.HTTP_204_NO_CONTENT)


class LibraryImportAPI(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        summary="Import papers into your library: a BibTeX file, arXiv ids, or an author's papers",
        request={"multipart/form-data": inline_serializer("BibtexUpload", {"file": serializers.FileField()}),
                 "application/json": inline_serializer("ImportIds", {
                     "arxiv_ids": serializers.ListField(child=serializers.CharField(), required=False),
                     "author": serializers.CharField(required=False)})},
        responses={200: OpenApiTypes.OBJECT, **errors(400, 401, 404)},
        examples=[OpenApiExample("arXiv ids", value={"arxiv_ids": ["2501.01234", "2502.00001v2"]})],
    )
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        library = _library_or_404(request, id, write=True)
        upload = request.FILES.get("file")
        data: Any = request.data if hasattr(request.data, "get") else {}
        if upload is not None:
            text = upload.read(bibtex.MAX_BIBTEX_BYTES + 1).decode("utf-8", "replace")
            report = bibtex.import_bibtex(library=library, text=text)
        elif data.get("arxiv_ids") is not None:
            report = libraries.import_arxiv_ids(library=library, ids=libraries.parse_arxiv_ids(data["arxiv_ids"]))
        elif data.get("author"):
            report = libraries.seed_from_author(library=library, author=str(data["author"]))
        else:
            raise InvalidParams({"body": "send a BibTeX file (multipart field `file`), "
                                         "{\"arxiv_ids\": [...]} or {\"author\": \"name\"}"})
        return Response({"library": library.pk, **report.as_dict()})


class BibtexRenderer(BaseRenderer):
    """Lets DRF accept ?format=bibtex (its format override); the body is the view's own."""

    media_type = "application/x-bibtex"
    format = "bibtex"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, str | bytes) else json.dumps(data)


class LibraryExportAPI(APIView):
    renderer_classes = [JSONRenderer, BibtexRenderer]

    def perform_content_negotiation(self, request, force=False):
        # an unknown ?format= is our 400 (below), not DRF's bare 404; errors go out as JSON
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(summary="A library as BibTeX",
                   parameters=[OpenApiParameter("format", str, enum=["bibtex"], description="bibtex (default)")],
                   responses={(200, "application/x-bibtex"): OpenApiTypes.STR, **errors(400, 404)})
    def get(self, request: Request, id: int) -> HttpResponse:  # noqa: A002
        library = _library_or_404(request, id, write=False)
        wanted = request.query_params.get("format", "bibtex")
        if wanted != "bibtex":
            raise InvalidParams({"format": "the export format is bibtex"})
        return bibtex_response(library)


def bibtex_response(library: Library) -> HttpResponse:
    papers = [e.paper for e in LibraryPaper.objects.filter(library=library).select_related("paper")]
    response = HttpResponse(bibtex.to_bibtex(papers), content_type="application/x-bibtex; charset=utf-8")
    safe = "".join(c if c.isalnum() else "-" for c in library.name)[:60] or "library"
    response["Content-Disposition"] = f'attachment; filename="{safe}.bib"'
    return response


RatingInput = inline_serializer("RatingInput", {"value": serializers.ChoiceField(choices=[1, -1])})


class RatingAPI(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Rate a paper: 1 (thumbs up) or -1 (thumbs down); changeable",
                   request=RatingInput, responses={200: OpenApiTypes.OBJECT, **errors(400, 401)})
    def put(self, request: Request, paper_id: int) -> Response:
        data = request.data if hasattr(request.data, "get") else {}
        value = libraries.parse_rating(data.get("value"))
        paper = libraries.paper_or_error(paper_id)
        rating = libraries.rate(user=request.user, paper=paper, value=value)
        return Response({"paper": paper.pk, "value": rating.value, "rated_at": rating.rated_at})

    @extend_schema(summary="Take back your rating", responses={204: None, **errors(401, 404)})
    def delete(self, request: Request, paper_id: int) -> Response:
        if not libraries.unrate(user=request.user, paper_id=paper_id):
            raise Http404(f"you have not rated paper {paper_id}")
        return Response(status=status.HTTP_204_NO_CONTENT)


class FeedAPI(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="New papers ranked by your model (or one library's), each with its reason",
        parameters=[OpenApiParameter("library", int,
                                     description="rank by this library's model (default: all of yours)"),
                    OpenApiParameter("since", str, description="papers added since (ISO date or date-time); "
                                                               "default: your previous visit, or 7 days"),
                    OpenApiParameter("days", int, description="instead of since: the last N days"),
                    k_parameter(20), *filter_parameters()],
        responses={200: OpenApiTypes.OBJECT, **errors(400, 401, 409)},
    )
    def get(self, request: Request) -> Response:
        params = parse_feed(request.query_params)
        result = feed.reader_feed(user=request.user, params=params)
        body = {"count": len(result.results), "since": result.since.isoformat(),
                "library": result.library.pk if result.library else None, "model": result.model,
                "results": ResultSerializer(result.results, many=True).data}
        if result.notice:
            body["notice"] = result.notice
        if request.user.is_staff:
            body["debug"] = result.plan
        return Response(body)
