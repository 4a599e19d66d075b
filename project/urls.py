from django.contrib import admin
from django.urls import include, path
from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from project import status as project_status
from recommend import api as recommend_api
from recommend import views as recommend_views
from search import api, views
from search.operations.health import PaperscopeHealth, WebHealth

api_v1 = [
    path("api/v1/search", api.SearchAPI.as_view(), name="api-search"),
    path("api/v1/papers", api.PaperListAPI.as_view(), name="api-papers"),
    path("api/v1/papers/<int:id>", api.PaperDetailAPI.as_view(), name="api-paper"),
    path("api/v1/papers/<int:id>/similar", recommend_api.PaperSimilarAPI.as_view(), name="api-similar"),
    path("api/v1/ingest", api.IngestAPI.as_view(), name="api-ingest"),
    path("api/v1/jobs/<int:id>", api.JobDetailAPI.as_view(), name="api-job"),
    path("api/v1/recommend", recommend_api.RecommendAPI.as_view(), name="api-recommend"),
    # recommend's status plus the recall audit's flags (issue 14, project/status.py)
    path("api/v1/status", project_status.StatusAPI.as_view(), name="api-status"),
]

urlpatterns = [
    path("", views.search_page, name="search"),
    path("papers/<int:pk>/", recommend_views.paper_page, name="paper"),
    path("recommend/", recommend_views.recommend_page, name="recommend"),
    path("labels/", views.labels_page, name="labels"),
    path("status/embeddings", views.embedding_status, name="embedding-status"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    *api_v1,
]

# --- operations (issue 14): the staff dashboard, Prometheus metrics, health checks ---------
urlpatterns += [
    path("dashboard/", include("search.operations.urls")),
    path("metrics", ExportToDjangoView, name="metrics"),
    path("health/", PaperscopeHealth.as_view(), name="health"),
    path("health/web/", WebHealth.as_view(), name="health-web"),
]

# JSON under /api/ (a client parsing JSON must not get Django's HTML page), HTML elsewhere
handler404 = "project.errors.not_found"
handler500 = "project.errors.server_error"
