from django.apps import AppConfig


class SearchConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "search"
    verbose_name = "Corpus and search"

    def ready(self) -> None:
        # Paperscope's gauges on /metrics (prometheus_client's default registry; other apps
        # register their own collectors the same way, see search.operations.metrics).
        from search.operations import metrics

        metrics.register()
        from search import sentence_tasks  # noqa: F401 - registers the sentence tasks
