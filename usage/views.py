"""The Usage page (yours; staff: anyone's or everyone's), its CSV download, and the staff budgets page."""

from datetime import date
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from orchestrator.errors import ServiceError
from usage import services
from usage.charts import chart_over_time, chart_top


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise services.UsageError(f"{value!r} is not a date (YYYY-MM-DD).") from None


def _query(request: HttpRequest) -> dict:
    return {
        "since": _date(request.GET.get("since")),
        "until": _date(request.GET.get("until")),
        "username": request.GET.get("user") or None,
    }


@login_required
@require_GET
def usage_page(request: HttpRequest) -> HttpResponse:
    try:
        page = services.usage_page_data(viewer=request.user, **_query(request))
    except ServiceError as exc:
        context = {"error": exc.message, "form": request.GET}
        return render(request, "usage/usage.html", context, status=exc.status_code)
    by_day, by_model = page["day"], page["model"]
    charts = [
        chart_over_time(rows=by_day.rows, since=by_day.since, until=by_day.until, metric=m, title=t)
        for m, t in (("requests", "Requests a day"), ("tokens", "Tokens a day"), ("cost_usd", "Cost a day (USD)"))
    ]
    context = {
        **page,
        "charts": charts,
        "top_models": chart_top(rows=by_model.rows, metric="tokens", title="Top models by tokens"),
        "form": request.GET,
        "users": get_user_model().objects.order_by("username") if request.user.is_staff else [],
    }
    return render(request, "usage/usage.html", context)


@login_required
@require_GET
def usage_csv(request: HttpRequest) -> HttpResponse:
    group_by = request.GET.get("group_by", "day")
    try:
        report = services.usage_report(viewer=request.user, group_by=group_by, **_query(request))
    except ServiceError as exc:
        return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain; charset=utf-8")
    response = HttpResponse(services.usage_csv(report=report), content_type="text/csv; charset=utf-8")
    name = f"usage-{report.username or 'everyone'}-{group_by}-{report.since}-{report.until}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _limit(raw: str, kind: type) -> int | Decimal | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except (ValueError, InvalidOperation):
        raise services.UsageError(f"{raw!r} is not a number; leave the field empty for no limit.") from None
    if value < 0:
        raise services.UsageError("A limit cannot be negative; leave the field empty for no limit.")
    return value


@login_required
@require_POST
def budget_save(request: HttpRequest) -> HttpResponse:
    """Staff set a user's limits (or the instance default, with no user name); empty fields: unlimited."""
    username = request.POST.get("username", "").strip() or None
    try:
        services.budget_set(
            actor=request.user,
            username=username,
            requests_per_minute=_limit(request.POST.get("requests_per_minute", ""), int),
            tokens_per_day=_limit(request.POST.get("tokens_per_day", ""), int),
            cost_per_month_usd=_limit(request.POST.get("cost_per_month_usd", ""), Decimal),
        )
    except services.UsageForbidden as exc:
        return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain; charset=utf-8")
    except ServiceError as exc:
        messages.error(request, exc.message)
        return render(
            request,
            "usage/budgets.html",
            services.budgets_page_data(actor=request.user) | {"form": request.POST},
            status=exc.status_code,
        )
    messages.success(request, f"Budget saved for {username or 'everyone (the instance default)'}.")
    return redirect("usage-budgets")


@login_required
@require_GET
def budgets_page(request: HttpRequest) -> HttpResponse:
    try:
        data = services.budgets_page_data(actor=request.user)
    except ServiceError as exc:
        return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain; charset=utf-8")
    return render(request, "usage/budgets.html", data | {"form": {}})
