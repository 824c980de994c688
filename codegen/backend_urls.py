from django.urls import path

from codegen import backend_views

urlpatterns = [
    path("", backend_views.backends_page, name="backends"),
    path("plan/", backend_views.backends_plan, name="backends-plan"),
    path("start/", backend_views.backends_start, name="backends-start"),
    path("<int:run_id>/", backend_views.backend_run_page, name="backend-run"),
]
