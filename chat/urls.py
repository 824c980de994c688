from django.urls import path

from chat import views

urlpatterns = [
    path("start/", views.chat_start, name="chat-start"),
    path("new/", views.conversation_new, name="chat-new"),
    path("models/", views.model_picker, name="chat-models"),
    path("search/", views.conversation_search, name="chat-search"),
    path("import/", views.conversation_import, name="chat-import"),
    path("<int:pk>/", views.conversation_page, name="chat-conversation"),
    path("<int:pk>/send/", views.chat_send, name="chat-send"),
    path("<int:pk>/regenerate/", views.chat_regenerate, name="chat-regenerate"),
    path("<int:pk>/rename/", views.conversation_rename, name="chat-rename"),
    path("<int:pk>/delete/", views.conversation_delete, name="chat-delete"),
    path("<int:pk>/settings/", views.conversation_settings, name="chat-settings"),
    path("<int:pk>/export.md", views.conversation_export_markdown, name="chat-export-md"),
    path("<int:pk>/export.json", views.conversation_export_json, name="chat-export-json"),
    path("<int:pk>/messages/<int:message_id>/edit/", views.chat_edit, name="chat-edit"),
    path("<int:pk>/messages/<int:message_id>/show/", views.chat_switch, name="chat-switch"),
    path("messages/<int:message_id>/stream/", views.chat_stream, name="chat-stream"),
    path("messages/<int:message_id>/stop/", views.chat_stop, name="chat-stop"),
]
