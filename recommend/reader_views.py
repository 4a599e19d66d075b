"""HTML views of the reader's loop: the feed, libraries, save / rate buttons, settings, the
Atom feed and the digest's unsubscribe link. The same parsers, services and selector as the
API (recommend.reader_api). Every form works without JavaScript (POST, then a redirect back);
with htmx the save / rate buttons swap just themselves."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.authtoken.models import Token

from recommend import bibtex, feed, libraries
from recommend.libraries import LibraryNotFound
from recommend.models import Library, LibraryPaper, Rating, ReaderProfile
from recommend.params import parse_feed
from recommend.reader_api import bibtex_response
from search.params import InvalidParams
from search.selectors import NotReady
from search.views import HtmxHttpRequest

WINDOWS = [("", "since your last visit"), ("1", "last day"), ("7", "last 7 days"),
           ("30", "last 30 days"), ("365", "last year")]


def _reader(request: HttpRequest) -> User:
    """The signed-in user (the views calling this are login_required)."""
    return cast(User, request.user)


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = fallback
    return HttpResponseRedirect(target or fallback)


# --- the feed ----------------------------------------------------------------------------------

@login_required
def feed_page(request: HtmxHttpRequest) -> HttpResponse:
    own = list(libraries.libraries_of(request.user))
    context: dict = {"libraries": own, "windows": WINDOWS, "errors": {}, "notice": "", "feed": None,
                     "days": request.GET.get("days", ""), "selected": request.GET.get("library", "")}
    try:
        params = parse_feed(request.GET, strict=False)
        context["feed"] = feed.reader_feed(user=request.user, params=params)
        context["notice"] = context["feed"].notice
    except InvalidParams as exc:
        context["errors"] = exc.errors
    except NotReady as exc:
        context["notice"] = str(exc)
    if not request.GET.get("since") and not request.GET.get("days") and not request.htmx:
        feed.record_visit(request.user)
    shown = context["feed"].results if context["feed"] else []
    context["state"] = reader_state(request.user, [r.paper.pk for r in shown])
    return render(request, "recommend/feed.html#body" if request.htmx else "recommend/feed.html", context)


def reader_state(user, paper_ids: list[int]) -> dict:
    """What the save / rate buttons show per paper: the libraries holding it, its rating."""
    if not user.is_authenticated:
        return {"saved": {}, "ratings": {}}
    saved: dict[int, set[int]] = {}
    for pid, lid in LibraryPaper.objects.filter(library__owner=user, paper_id__in=paper_ids).values_list(
            "paper_id", "library_id"):
        saved.setdefault(pid, set()).add(lid)
    ratings = dict(Rating.objects.filter(user=user, paper_id__in=paper_ids).values_list("paper_id", "value"))
    return {"saved": saved, "ratings": ratings}


# --- save / rate (the buttons under every paper) ------------------------------------------------

def _actions(request: HttpRequest, paper_id: int) -> HttpResponse:
    """The buttons of one paper, re-rendered after a change (htmx) or a redirect back."""
    state = reader_state(request.user, [paper_id])
    context = {"pid": paper_id, "reader_libraries": list(libraries.libraries_of(request.user)),
               "saved_in": state["saved"].get(paper_id, set()), "rating": state["ratings"].get(paper_id),
               "next": request.POST.get("next", "")}
    return render(request, "partials/paper_actions.html", context)


@login_required
@require_POST
def save_paper(request: HtmxHttpRequest) -> HttpResponse:
    try:
        paper = libraries.paper_or_error(request.POST.get("paper"))
        # the buttons name their fields per paper (one page form serves every paper on it)
        name = (request.POST.get(f"new_library_{paper.pk}") or request.POST.get("new_library", "")).strip()
        chosen = request.POST.get(f"library_{paper.pk}") or request.POST.get("library") or "0"
        if name:
            library = (libraries.libraries_of(request.user).filter(name=" ".join(name.split())).first()
                       or libraries.library_create(user=request.user, name=name))
        else:
            library = libraries.library_for_owner(request.user, int(chosen))
        if request.POST.get("remove"):
            libraries.library_remove(library=library, paper_id=paper.pk)
            done = f"Removed from {library.name}."
        else:
            libraries.library_add(library=library, paper=paper)
            done = f"Saved to {library.name}."
    except (InvalidParams, LibraryNotFound, ValueError) as exc:
        return _refused(request, exc)
    if request.htmx:
        return _actions(request, paper.pk)
    messages.success(request, done)
    return _back(request, reverse("paper", args=[paper.pk]))


@login_required
@require_POST
def rate_paper(request: HtmxHttpRequest, paper_id: int) -> HttpResponse:
    try:
        paper = libraries.paper_or_error(paper_id)
        raw = request.POST.get("value", "")
        current = Rating.objects.filter(user=_reader(request), paper=paper).values_list("value", flat=True).first()
        value = libraries.parse_rating(raw) if raw else None
        if value is None or value == current:  # the same thumb again takes it back
            libraries.unrate(user=request.user, paper_id=paper.pk)
        else:
            libraries.rate(user=request.user, paper=paper, value=value)
    except InvalidParams as exc:
        return _refused(request, exc)
    if request.htmx:
        return _actions(request, paper.pk)
    return _back(request, reverse("paper", args=[paper.pk]))


def _refused(request: HtmxHttpRequest, exc: Exception) -> HttpResponse:
    text = "; ".join(exc.errors.values()) if isinstance(exc, InvalidParams) else str(exc).strip("'\"")
    if isinstance(exc, ValueError) and not isinstance(exc, InvalidParams):
        text = "choose a library"
    if request.htmx:
        return HttpResponse(f'<p class="error" role="alert">{escape(text)}</p>', status=400)
    messages.error(request, text)
    return _back(request, reverse("libraries"))


# --- libraries ---------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def libraries_page(request: HttpRequest) -> HttpResponse:
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            library = libraries.library_create(
                user=request.user, name=request.POST.get("name"), description=request.POST.get("description", ""),
                keywords=request.POST.get("keywords", ""), is_public=bool(request.POST.get("is_public")))
            messages.success(request, f"Library {library.name!r} created.")
            return HttpResponseRedirect(reverse("library", args=[library.pk]))
        except InvalidParams as exc:
            errors = exc.errors
    rows = libraries.libraries_of(request.user).annotate(n_papers=Count("entries"))
    return render(request, "recommend/libraries.html", {"libraries": rows, "errors": errors,
                                                         "form": request.POST})


def library_page(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        library = libraries.library_for_reader(request.user, pk)
    except LibraryNotFound:
        raise Http404("no such library") from None
    mine = request.user.is_authenticated and library.owner_id == request.user.pk
    entries = LibraryPaper.objects.filter(library=library).select_related("paper")
    page = _page(request, entries)
    context = {"library": library, "mine": mine, "page": page, "errors": {}, "report": None,
               "atom_url": request.build_absolute_uri(reverse("library-atom", args=[library.feed_token]))}
    if mine:
        context["state"] = reader_state(request.user, [e.paper_id for e in page])
    return render(request, "recommend/library.html", context)


def _page(request: HttpRequest, rows, size: int = 50):
    from django.core.paginator import Paginator

    return Paginator(rows, size).get_page(request.GET.get("page"))


@login_required
@require_POST
def library_edit(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        library = libraries.library_for_owner(request.user, pk)
    except LibraryNotFound:
        raise Http404("no such library") from None
    action = request.POST.get("action", "update")
    try:
        if action == "delete":
            if request.POST.get("confirm") != library.name:
                raise InvalidParams({"confirm": "type the library's name to delete it"})
            libraries.library_delete(library=library)
            messages.success(request, f"Library {library.name!r} deleted.")
            return HttpResponseRedirect(reverse("libraries"))
        if action == "import":
            report = _import(request, library)
            summary = f"Imported {len(report.added)} paper(s)"
            if report.already:
                summary += f", {len(report.already)} already there"
            if report.unknown:
                summary += f"; not found here: {', '.join(report.unknown[:20])}"
                summary += " …" if len(report.unknown) > 20 else ""
            for error in report.errors[:10]:
                messages.warning(request, error)
            messages.success(request, summary + ".")
        else:
            libraries.library_update(library=library, name=request.POST.get("name", library.name),
                                     description=request.POST.get("description", ""),
                                     keywords=request.POST.get("keywords", ""),
                                     is_public=bool(request.POST.get("is_public")))
            messages.success(request, "Saved.")
    except InvalidParams as exc:
        for message in exc.errors.values():
            messages.error(request, message)
    return HttpResponseRedirect(reverse("library", args=[library.pk]))


def _import(request: HttpRequest, library: Library) -> libraries.ImportReport:
    upload = request.FILES.get("file")
    if upload is not None:
        return bibtex.import_bibtex(library=library, text=upload.read(bibtex.MAX_BIBTEX_BYTES + 1)
                                    .decode("utf-8", "replace"))
    if request.POST.get("arxiv_ids", "").strip():
        return libraries.import_arxiv_ids(library=library, ids=libraries.parse_arxiv_ids(request.POST["arxiv_ids"]))
    if request.POST.get("author", "").strip():
        return libraries.seed_from_author(library=library, author=request.POST["author"])
    raise InvalidParams({"import": "choose a BibTeX file, paste arXiv ids or give an author name"})


def library_bibtex(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        return bibtex_response(libraries.library_for_reader(request.user, pk))
    except LibraryNotFound:
        raise Http404("no such library") from None


def library_atom(request: HttpRequest, token: str) -> HttpResponse:
    from recommend.syndication import LibraryAtom

    return LibraryAtom()(request, token=token)


# --- settings and unsubscribe -----------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    profile = feed.profile_of(request.user)
    new_key = None
    if request.method == "POST":
        if request.POST.get("action") == "token":
            # A new key replaces the old one, which stops working; shown once, on this page.
            Token.objects.filter(user=_reader(request)).delete()
            new_key = Token.objects.create(user=_reader(request)).key
        else:
            choice = request.POST.get("digest", profile.digest)
            if choice not in ReaderProfile.Digest.values:
                messages.error(request, "choose daily, weekly or off")
            else:
                profile.digest = choice
                try:
                    size = int(request.POST.get("digest_size", profile.digest_size))
                except ValueError:
                    size = profile.digest_size
                profile.digest_size = min(max(size, 1), 20)
                profile.save(update_fields=["digest", "digest_size"])
                messages.success(request, "Digest settings saved.")
                return HttpResponseRedirect(reverse("reader-settings"))
    return render(request, "recommend/settings.html", {
        "profile": profile, "choices": ReaderProfile.Digest.choices, "new_key": new_key,
        "has_token": Token.objects.filter(user=_reader(request)).exists()})


@csrf_exempt  # a mail client's one-click POST carries no CSRF token: the secret is the key
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The digest's link: GET asks, POST (a click, or a mail client's one-click
    List-Unsubscribe-Post) turns digests off. No sign-in needed: the token is the key."""
    profile = ReaderProfile.objects.filter(unsubscribe_token=token).select_related("user").first()
    if profile is None:
        raise Http404("this unsubscribe link is not valid (any more)")
    done = False
    if request.method == "POST":
        profile.digest = ReaderProfile.Digest.OFF
        profile.save(update_fields=["digest"])
        done = True
    return render(request, "recommend/unsubscribe.html", {"profile": profile, "done": done})
