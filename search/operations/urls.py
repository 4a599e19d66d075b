"""/dashboard/ (included by project/urls.py)."""

from django.urls import path

from search.operations import views

urlpatterns = [
    path("", views.dashboard_page, name="dashboard"),
    path("section/<slug:name>/", views.dashboard_section, name="dashboard-section"),
    path("ingest/", views.ingest_upload, name="dashboard-ingest"),
    path("sweep/", views.sweep_now, name="dashboard-sweep"),
    path("audit/", views.audit_now, name="dashboard-audit"),
    path("spaces/add/", views.space_add, name="dashboard-space-add"),
    path("spaces/<int:pk>/compare/", views.space_compare, name="dashboard-space-compare"),
    path("spaces/<int:pk>/switch/", views.space_switch, name="dashboard-space-switch"),
    path("spaces/<int:pk>/delete/", views.space_delete, name="dashboard-space-delete"),
    path("rollback/", views.space_rollback, name="dashboard-rollback"),
]
