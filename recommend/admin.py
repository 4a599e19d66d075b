from django.contrib import admin
from django.db import transaction
from django.db.models import Count

from recommend import tasks
from recommend.models import Digest, DigestItem, LexicalModel, Library, Rating, ReaderModel, ReaderProfile


@admin.register(LexicalModel)
class LexicalModelAdmin(admin.ModelAdmin):
    list_display = ("version", "terms_count", "papers", "corpus", "created_at")
    readonly_fields = ("version", "papers", "corpus", "created_at")
    exclude = ("terms", "idf")  # 20k terms: not for a form
    actions = ["fit_now"]

    @admin.display(description="terms")
    def terms_count(self, model: LexicalModel) -> int:
        return len(model.terms)

    @admin.action(description="Fit the tf-idf vocabulary on the corpus now")
    def fit_now(self, request, queryset):
        # A fit reads up to 50k abstracts: a worker's job, not the request's.
        transaction.on_commit(tasks.fit_lexical.delay)
        self.message_user(request, "queued a fit of the tf-idf vocabulary; the new version "
                          "appears here when a worker has finished it")


# --- the reader's loop: what operators look at when a reader asks "why did I get this?" -------

@admin.register(Library)
class LibraryAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "papers_count", "keywords", "is_public", "changed_at")
    list_filter = ("is_public",)
    search_fields = ("name", "owner__username", "keywords")
    readonly_fields = ("feed_token", "created_at", "changed_at")
    raw_id_fields = ("owner",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_papers=Count("entries"))

    @admin.display(description="papers", ordering="n_papers")
    def papers_count(self, library) -> int:
        return library.n_papers


@admin.register(ReaderModel)
class ReaderModelAdmin(admin.ModelAdmin):
    list_display = ("user", "library", "kind", "positives", "negatives", "train_ms", "trained_at")
    list_filter = ("kind",)
    exclude = ("artifact",)  # coefficients: not for a form
    readonly_fields = ("user", "library", "version", "kind", "positives", "negatives", "train_ms", "trained_at")


class DigestItemInline(admin.TabularInline):
    model = DigestItem
    extra = 0
    raw_id_fields = ("paper",)
    readonly_fields = ("paper", "library", "rank", "reason")
    can_delete = False


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = ("user", "period", "status", "attempts", "window_start", "window_end", "sent_at")
    list_filter = ("status",)
    search_fields = ("user__username", "user__email", "period")
    readonly_fields = ("user", "period", "window_start", "window_end", "status", "attempts", "sent_at")
    inlines = [DigestItemInline]


@admin.register(ReaderProfile)
class ReaderProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "digest", "digest_size", "feed_visited_at")
    list_filter = ("digest",)
    exclude = ("unsubscribe_token",)


admin.site.register(Rating, list_display=("user", "paper", "value", "rated_at"), raw_id_fields=("user", "paper"))
