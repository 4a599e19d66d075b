from django.apps import AppConfig


class RecommendConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommend"
    verbose_name = "Recommendations"

    def ready(self) -> None:
        from recommend import metrics

        metrics.register()
