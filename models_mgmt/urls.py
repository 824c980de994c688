from django.urls import path

from models_mgmt import views

urlpatterns = [
    path("", views.models_page, name="models"),
    path("sync/", views.models_sync, name="models-sync"),
    path("failures/reset/", views.failures_reset, name="models-reset"),
    path("servers/", views.server_add, name="server-add"),
    path("downloads/", views.model_download, name="model-download"),
    path("downloads/<slug:provider>/<str:job_id>/", views.model_download_status, name="model-download-status"),
    path("<int:pk>/row/", views.model_row, name="model-row"),
    path("<int:pk>/load/", views.model_load, name="model-load"),
    path("<int:pk>/load/cancel/", views.model_load_cancel, name="model-load-cancel"),
    path("<int:pk>/unload/", views.model_unload, name="model-unload"),
    path("<int:pk>/active/", views.model_set_active, name="model-active"),
]
