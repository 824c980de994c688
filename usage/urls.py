from django.urls import path

from usage import views

urlpatterns = [
    path("", views.usage_page, name="usage"),
    path("export.csv", views.usage_csv, name="usage-csv"),
    path("budgets/", views.budgets_page, name="usage-budgets"),
    path("budgets/save/", views.budget_save, name="usage-budget-save"),
]
