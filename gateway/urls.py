"""Mounted at /v1/, so that OpenAI clients take `<site>/v1` as their base URL."""

from django.urls import path, re_path

from gateway import views

urlpatterns = [
    path("models", views.models, name="gateway-models"),
    # Model refs contain slashes (lmstudio/qwen/qwen2.5-7b-instruct), hence path:.
    path("models/<path:ref>", views.model_detail, name="gateway-model"),
    path("chat/completions", views.chat_completions, name="gateway-chat-completions"),
    # Anything else under /v1/ answers in OpenAI's error shape rather than with Django's HTML page.
    re_path(r"^(?P<rest>.*)$", views.unknown),
]
