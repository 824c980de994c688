from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views as accounts_views
from chat import views as chat_views
from codegen import views as codegen_views
from core import views as core_views
from orchestrator.api import api

# Under /api/ a 404 or 500 answers JSON like the rest of the API; pages keep Django's own pages.
handler404 = "core.access.not_found"
handler500 = "core.access.failed"

urlpatterns = [
    path("", chat_views.chat_home, name="home"),
    path("chat/", include("chat.urls")),
    path("codegen/", include("codegen.urls")),
    path("backends/", include("codegen.backend_urls")),
    path("llm-codegen/generate", codegen_views.generate, name="llm-codegen-generate"),
    path("models/", include("models_mgmt.urls")),
    path("api-keys/", include("apikeys.urls")),
    path("usage/", include("usage.urls")),
    path("settings/", accounts_views.settings_page, name="settings"),
    path("settings/tokens/", accounts_views.token_create, name="token-create"),
    path("settings/tokens/<int:token_id>/revoke/", accounts_views.token_revoke, name="token-revoke"),
    path("settings/password/", accounts_views.password_change, name="password-change"),
    path("settings/users/", accounts_views.users_page, name="users"),
    path("settings/users/new/", accounts_views.user_create, name="user-create"),
    path("settings/users/<int:user_id>/password/", accounts_views.user_password_reset, name="user-password"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("v1/", include("gateway.urls")),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", core_views.metrics, name="metrics"),
]
