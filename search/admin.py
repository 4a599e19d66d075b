from django.contrib import admin
from django.db import connection
from django.utils.html import format_html

from search import selectors, services
from search.models import ConceptStats, EmbeddingSpace, Job, Paper, PaperEmbedding
from search.planner import space_indexes_like


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    list_display = ("title", "arxiv_id", "doi", "published", "primary_category", "has_labels")
    list_filter = ("published",)
    search_fields = ("title", "arxiv_id", "doi")
    readonly_fields = ("content_hash", "concepts", "concepts_version", "created_at", "updated_at",
                       "first_seen")
    exclude = ("search_vector",)
    date_hierarchy = "published"
    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).defer("search_vector", "abstract")

    @admin.display(description="category")
    def primary_category(self, paper: Paper) -> str:
        return paper.categories[0] if paper.categories else ""

    @admin.display(boolean=True, description="labels")
    def has_labels(self, paper: Paper) -> bool:
        return bool(paper.tasks or paper.methods or paper.datasets)


@admin.register(ConceptStats)
class ConceptStatsAdmin(admin.ModelAdmin):
    list_display = ("dictionary_version", "papers", "distinct", "created_at")
    readonly_fields = ("dictionary_version", "papers", "created_at")
    exclude = ("frequencies",)
    actions = ["refresh_now"]

    @admin.display(description="distinct concepts")
    def distinct(self, stats: ConceptStats) -> int:
        return len(stats.frequencies)

    @admin.action(description="Find concepts in outdated papers and recount (background task)")
    def refresh_now(self, request, queryset):
        # A pass over every paper: minutes at 1M, too long for a request.
        from search.tasks import refresh_concepts

        refresh_concepts.delay_on_commit(recount=True)
        self.message_user(request, "queued the concept refresh and recount; the newest counts "
                                   "appear here when it has run")


@admin.register(EmbeddingSpace)
class EmbeddingSpaceAdmin(admin.ModelAdmin):
    list_display = ("name", "aspect", "model_name", "dimension", "is_active", "coverage",
                    "code_version", "index_sizes")
    readonly_fields = ("created_at", "code_version")
    actions = ["build_code", "refit_code"]

    @admin.action(description="Build the ternary code + index (background job)")
    def build_code(self, request, queryset):
        for space in queryset:
            job = services.space_code_job_create(space=space, user=request.user)
            self.message_user(request, f"queued job {job.pk} for {space.name}")

    @admin.action(description="Refit the ternary code thresholds and rebuild (background job)")
    def refit_code(self, request, queryset):
        for space in queryset:
            job = services.space_code_job_create(space=space, refit=True, user=request.user)
            self.message_user(request, f"queued job {job.pk} for {space.name}")

    @admin.display(description="coverage")
    def coverage(self, space: EmbeddingSpace) -> str:
        for c in selectors.embedding_coverage():
            if c.space == space.name:
                return f"{c.embedded} / {c.total} ({c.percent}%)"
        return "-"

    @admin.display(description="index sizes")
    def index_sizes(self, space: EmbeddingSpace) -> str:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, pg_size_pretty(pg_relation_size(indexname::regclass)) "
                "FROM pg_indexes WHERE tablename IN ('search_paperembedding', 'search_papercode') "
                "AND indexname LIKE %s "
                "ORDER BY indexname", [space_indexes_like(space)])
            rows = cursor.fetchall()
        return ", ".join(f"{name.split('_', 2)[2]}: {size}" for name, size in rows) or "-"


@admin.register(PaperEmbedding)
class PaperEmbeddingAdmin(admin.ModelAdmin):
    list_display = ("paper_id", "space", "content_hash", "computed_at")
    list_filter = ("space",)
    raw_id_fields = ("paper",)
    fields = ("paper", "space", "content_hash", "computed_at")
    readonly_fields = fields


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "description", "status", "progress_bar", "created_at",
                    "finished_at")
    list_filter = ("kind", "status")
    readonly_fields = ("kind", "status", "description", "params", "total", "processed",
                       "stats", "errors", "message", "created_by", "created_at", "started_at",
                       "finished_at")

    @admin.display(description="progress")
    def progress_bar(self, job: Job):
        return format_html('<progress max="{}" value="{}"></progress> {} / {}',
                           job.total or 1, job.processed, job.processed, job.total)
