from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field

from codegen.models import BackendRun, CodegenRun


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


class BackendIn(Schema):
    requirements: str = Field(description="What the backend should do, in words")
    model: str | None = Field(None, description="<provider>/<model id>; default: the best usable model")
    plan: dict[str, Any] | None = Field(None, description="A plan to use instead of asking the model for one")
    max_rounds: int = Field(3, ge=1, le=5, description="Validation rounds, repairs included")


class BackendCreatedOut(Schema):
    id: int
    status: str


class BackendFileOut(Schema):
    path: str
    lines: int


class BackendRoundOut(Schema):
    number: int
    score: dict[str, Any]
    changed: list[str]
    files: list[BackendFileOut]
    validation: dict[str, Any]


class BackendOut(Schema):
    id: int
    status: str
    requirements: str
    plan: dict[str, Any] | None
    max_rounds: int
    rounds: list[BackendRoundOut]
    best_round: int | None
    files: list[BackendFileOut]
    validation: dict[str, Any] | None
    error: str
    answered_by: str
    archive_url: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @staticmethod
    def _files(files: dict[str, str]) -> list[BackendFileOut]:
        return [BackendFileOut(path=p, lines=len(c.splitlines())) for p, c in sorted(files.items())]

    @classmethod
    def of(cls, run: BackendRun) -> "BackendOut":
        rounds = [
            BackendRoundOut(
                number=r["number"],
                score=r["score"],
                changed=r["changed"],
                files=cls._files(r["files"]),
                validation=r["validation"],
            )
            for r in run.rounds
        ]
        best = next((r for r in run.rounds if r["number"] == run.best_round), None)
        return cls(
            id=run.pk,
            status=run.status,
            requirements=run.requirements,
            plan=run.plan,
            max_rounds=run.max_rounds,
            rounds=rounds,
            best_round=run.best_round,
            files=cls._files(best["files"]) if best else [],
            validation=best["validation"] if best else None,
            error=run.error,
            answered_by=run.answered_by,
            archive_url=f"/api/backends/{run.pk}/archive" if best and best["score"]["screener_passed"] else None,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )


class ArchiveRefusedOut(Schema):
    detail: str
    findings: list[dict[str, Any]]
