"""GET /api/usage, GET/PUT/DELETE /api/budgets/{username}, GET/PUT /api/budgets (the instance default)."""

from django.http import HttpRequest
from ninja import Query, Router

from accounts.auth import api_auth
from models_mgmt.schemas import ErrorOut
from usage import services
from usage.schemas import BudgetIn, BudgetOut, UsageOut, UsageQueryIn

router = Router(tags=["usage"], auth=api_auth)


@router.get(
    "/usage",
    response={200: UsageOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="Requests, tokens and cost grouped by day, model, provider or user (yours; staff: anyone's)",
)
def usage(request: HttpRequest, query: Query[UsageQueryIn]) -> UsageOut:
    report = services.usage_report(
        viewer=request.user, group_by=query.group_by, since=query.since, until=query.until, username=query.user
    )
    return UsageOut.of(report)


@router.get("/budgets", response={200: BudgetOut}, summary="The instance default budget")
def default_budget(request: HttpRequest) -> BudgetOut:
    return BudgetOut.of(services.budget_get(viewer=request.user, username=None))


@router.put("/budgets", response={200: BudgetOut, 403: ErrorOut}, summary="Set the instance default budget (staff)")
def default_budget_set(request: HttpRequest, payload: BudgetIn) -> BudgetOut:
    view = services.budget_set(actor=request.user, username=None, **payload.dict())
    return BudgetOut.of(view)


@router.get(
    "/budgets/{username}",
    response={200: BudgetOut, 404: ErrorOut},
    summary="A user's limits and what is left (the user themself, or staff)",
)
def budget(request: HttpRequest, username: str) -> BudgetOut:
    return BudgetOut.of(services.budget_get(viewer=request.user, username=username))


@router.put(
    "/budgets/{username}",
    response={200: BudgetOut, 403: ErrorOut, 404: ErrorOut},
    summary="Set a user's limits (staff); null is unlimited",
)
def budget_set(request: HttpRequest, username: str, payload: BudgetIn) -> BudgetOut:
    view = services.budget_set(actor=request.user, username=username, **payload.dict())
    return BudgetOut.of(view)


@router.delete(
    "/budgets/{username}",
    response={200: BudgetOut, 403: ErrorOut, 404: ErrorOut},
    summary="The user follows the instance default again (staff)",
)
def budget_clear(request: HttpRequest, username: str) -> BudgetOut:
    return BudgetOut.of(services.budget_clear(actor=request.user, username=username))
