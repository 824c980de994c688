from django.urls import path

from apikeys import views

urlpatterns = [
    path("", views.keys_page, name="api-keys"),
    path("add/", views.key_create, name="api-key-create"),
    path("<int:key_id>/", views.key_update, name="api-key-update"),
    path("<int:key_id>/delete/", views.key_delete, name="api-key-delete"),
    path("<int:key_id>/test/", views.key_test, name="api-key-test"),
    path("<int:key_id>/default/", views.key_make_default, name="api-key-default"),
]
