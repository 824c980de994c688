from django.urls import path

from codegen import views

urlpatterns = [
    path("", views.page, name="codegen"),
    path("generate/", views.page_generate, name="codegen-generate"),
    path("runs/", views.page_run, name="codegen-run"),
]
