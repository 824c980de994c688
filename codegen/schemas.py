from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field

from codegen.models import CodegenRun


class RunIn(Schema):
    spec: dict[str, Any] | str = Field(description="The OpenAPI document: an object, or JSON or YAML text")
    max_tests_per_endpoint: int = Field(3, ge=1, le=10)
    model: str | None = Field(None, description="<provider>/<model id>; default: the best usable model")


class RunCreatedOut(Schema):
    id: int
    status: str


class RunOut(Schema):
    id: int
    status: str
    title: str
    error: str
    plan: list[dict[str, Any]]
    validation: dict[str, Any]
    answered_by: str
    trace_id: str
    artifact_url: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, run: CodegenRun) -> "RunOut":
        return cls(
            id=run.pk,
            status=run.status,
            title=run.title,
            error=run.error,
            plan=run.plan,
            validation=run.validation,
            answered_by=run.answered_by,
            trace_id=run.trace_id,
            artifact_url=f"/api/codegen/runs/{run.pk}/artifact" if run.artifact else None,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )
