from django.contrib import admin
from django.db import transaction

from recommend import tasks
from recommend.models import LexicalModel


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
