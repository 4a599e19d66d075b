"""The operator's dashboard (/dashboard/, staff only): one page of sections, each refreshed
by htmx from its own partial, and the operator's actions (ingest a file, sweep, audit, the
model registry). Actions only queue tasks or flip flags; nothing heavy runs in a request.

Anonymous visitors are sent to log in; signed-in non-staff users get 403.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from search import services
from search.models import EmbeddingSpace, SpaceComparison
from search.operations import dashboard, registry


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("the dashboard is for staff")
        return view(request, *args, **kwargs)
    return wrapper


@staff_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    # each section rendered by the same template its htmx refresh uses
    sections = [render_to_string(f"search/dashboard/_{name}.html", dashboard.section_context(name),
                                 request=request) for name in dashboard.SECTIONS]
    return render(request, "search/dashboard/page.html", {"sections": sections})


@staff_required
def dashboard_section(request: HttpRequest, name: str) -> HttpResponse:
    if name not in dashboard.SECTIONS:
        raise Http404("no such section")
    return render(request, f"search/dashboard/_{name}.html", dashboard.section_context(name))


def _back(section: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("dashboard") + f"#sec-{section}")


@require_POST
@staff_required
def ingest_upload(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "choose a file to ingest")
        return _back("corpus")
    if upload.size is not None and upload.size > settings.INGEST_MAX_UPLOAD_BYTES:
        messages.error(request, f"the file is larger than {settings.INGEST_MAX_UPLOAD_BYTES // 2**20} MiB")
        return _back("corpus")
    job = services.ingest_job_from_upload(upload=upload, user=request.user)
    messages.success(request, f"queued ingestion job {job.pk} for {job.params['file']}")
    return _back("corpus")


@require_POST
@staff_required
def sweep_now(request: HttpRequest) -> HttpResponse:
    from search.tasks import embed_missing, pipeline_snapshot

    embed_missing.delay()
    pipeline_snapshot.delay()
    messages.success(request, "queued the sweep (papers missing vectors) and a pipeline snapshot")
    return _back("pipeline")


@require_POST
@staff_required
def audit_now(request: HttpRequest) -> HttpResponse:
    from search.tasks import audit_recall

    audit_recall.delay()
    messages.success(request, "queued a recall audit; its numbers appear here in seconds")
    return _back("recall")


@require_POST
@staff_required
def space_add(request: HttpRequest) -> HttpResponse:
    from search.tasks import registry_add_space

    model_name = request.POST.get("model_name", "").strip()
    reason = registry.model_available(model_name)
    if reason:
        messages.error(request, reason)
    else:
        registry_add_space.delay(model_name, "generic")
        messages.success(request, f"adding a space for {model_name}; it fills in the background")
    return _back("registry")


@require_POST
@staff_required
def space_compare(request: HttpRequest, pk: int) -> HttpResponse:
    from search.tasks import registry_compare

    candidate = get_object_or_404(EmbeddingSpace, pk=pk)
    baseline = EmbeddingSpace.objects.filter(aspect=candidate.aspect, is_active=True).first()
    if baseline is None or baseline.pk == candidate.pk:
        messages.error(request, "compare an inactive space with its aspect's active one")
        return _back("registry")
    comparison = SpaceComparison.objects.create(baseline=baseline, candidate=candidate)
    registry_compare.delay_on_commit(comparison.pk)
    messages.success(request, f"comparing {candidate.name} with {baseline.name}")
    return _back("registry")


@require_POST
@staff_required
def space_switch(request: HttpRequest, pk: int) -> HttpResponse:
    space = get_object_or_404(EmbeddingSpace, pk=pk)
    try:
        registry.registry_switch(space=space)
        messages.success(request, f"{space.name} is now the active {space.aspect} space")
    except registry.RegistryError as exc:
        messages.error(request, str(exc))
    return _back("registry")


@require_POST
@staff_required
def space_rollback(request: HttpRequest) -> HttpResponse:
    try:
        space = registry.registry_rollback(aspect=request.POST.get("aspect", "generic"))
        messages.success(request, f"rolled back: {space.name} is active again")
    except registry.RegistryError as exc:
        messages.error(request, str(exc))
    return _back("registry")


@require_POST
@staff_required
def space_delete(request: HttpRequest, pk: int) -> HttpResponse:
    from search.tasks import registry_delete_space

    space = get_object_or_404(EmbeddingSpace, pk=pk)
    if request.POST.get("confirm", "").strip() != space.name:
        messages.error(request, f"type the space's name ({space.name}) to confirm its deletion")
    elif reason := registry.registry_delete_check(space):
        messages.error(request, reason)
    else:
        registry_delete_space.delay(space.pk)
        messages.success(request, f"deleting {space.name} and its indexes in the background")
    return _back("registry")
