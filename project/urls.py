from django.contrib import admin
from django.urls import include, path
from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from project import status as project_status
from recommend import api as recommend_api
from recommend import reader_api, reader_views
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
    # the reader's loop
    path("api/v1/libraries", reader_api.LibraryListAPI.as_view(), name="api-libraries"),
    path("api/v1/libraries/<int:id>", reader_api.LibraryDetailAPI.as_view(), name="api-library"),
    path("api/v1/libraries/<int:id>/papers", reader_api.LibraryPapersAPI.as_view(), name="api-library-papers"),
    path("api/v1/libraries/<int:id>/papers/<int:paper_id>", reader_api.LibraryPaperAPI.as_view(),
         name="api-library-paper"),
    path("api/v1/libraries/<int:id>/import", reader_api.LibraryImportAPI.as_view(), name="api-library-import"),
    path("api/v1/libraries/<int:id>/export", reader_api.LibraryExportAPI.as_view(), name="api-library-export"),
    path("api/v1/ratings/<int:paper_id>", reader_api.RatingAPI.as_view(), name="api-rating"),
    path("api/v1/feed", reader_api.FeedAPI.as_view(), name="api-feed"),
]

readers = [
    path("feed/", reader_views.feed_page, name="feed"),
    path("libraries/", reader_views.libraries_page, name="libraries"),
    path("libraries/save", reader_views.save_paper, name="library-save"),
    path("libraries/<int:pk>/", reader_views.library_page, name="library"),
    path("libraries/<int:pk>/edit", reader_views.library_edit, name="library-edit"),
    path("libraries/<int:pk>/library.bib", reader_views.library_bibtex, name="library-bibtex"),
    path("libraries/atom/<str:token>.xml", reader_views.library_atom, name="library-atom"),
    path("ratings/<int:paper_id>", reader_views.rate_paper, name="rate"),
    path("accounts/settings/", reader_views.settings_page, name="reader-settings"),
    path("digest/unsubscribe/<str:token>/", reader_views.unsubscribe, name="digest-unsubscribe"),
    path("accounts/", include("allauth.urls")),
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
    *readers,
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
