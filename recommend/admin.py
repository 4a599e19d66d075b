from django.contrib import admin

from recommend import lexical
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
        model = lexical.fit_model()
        self.message_user(request, f"fitted {model}" if model else
                          f"the corpus has fewer than {lexical.FIT_MIN} papers")
