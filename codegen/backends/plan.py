"""The plan a model (or the user) gives for a backend, and how it is read from an answer."""

from __future__ import annotations

import json
import keyword
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

FENCED_JSON = re.compile(r"```[ \t]*json[^\n]*\n(.*?)```", re.S | re.I)
FieldType = Literal["str", "int", "float", "bool", "date", "datetime"]
# Names the layout itself uses in the generated modules; a field or entity of that name would shadow them.
RESERVED_FIELDS = frozenset({"id", "metadata", "registry"})


class PlanError(ValueError):
    """The plan is missing or does not fit the schema; the message says what is wrong."""


class _Plan(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class PlanField(_Plan):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    type: FieldType
    required: bool = True

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if keyword.iskeyword(name) or name in RESERVED_FIELDS:
            raise ValueError(f"{name!r} cannot be a field name (Python keyword or used by the layout)")
        return name


class PlanEntity(_Plan):
    name: str = Field(pattern=r"^[A-Z][A-Za-z0-9]{0,39}$", description="A class name, e.g. Book")
    fields: list[PlanField] = Field(min_length=1, max_length=30)

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, fields: list[PlanField]) -> list[PlanField]:
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        return fields

    @property
    def snake(self) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()

    @property
    def plural(self) -> str:
        return self.snake + ("es" if self.snake.endswith(("s", "x", "ch", "sh")) else "s")


class PlanEndpoint(_Plan):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(pattern=r"^/[A-Za-z0-9_{}/-]{0,199}$")
    summary: str = Field(default="", max_length=300)
    entity: str | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, method: object) -> object:
        return method.upper() if isinstance(method, str) else method


class BackendPlan(_Plan):
    project_name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,49}$")
    entities: list[PlanEntity] = Field(min_length=1, max_length=10)
    endpoints: list[PlanEndpoint] = Field(min_length=1, max_length=40)
    auth: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> BackendPlan:
        names = [e.name for e in self.entities]
        if len(set(names)) != len(names):
            raise ValueError("entity names must be unique")
        for endpoint in self.endpoints:
            if endpoint.entity is not None and endpoint.entity not in names:
                raise ValueError(
                    f"endpoint {endpoint.method} {endpoint.path} names an unknown entity {endpoint.entity!r}"
                )
        routes = [(e.method, e.path) for e in self.endpoints]
        if len(set(routes)) != len(routes):
            raise ValueError("an endpoint (method and path) is listed twice")
        return self


def _errors(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "plan"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def plan_validate(data: object) -> BackendPlan:
    """A plan given as an object (the API's `plan`, the page's edited JSON once parsed)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise PlanError(f"The plan is not valid JSON: {exc}") from None
    try:
        return BackendPlan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"The plan does not fit the schema: {_errors(exc)}") from None


def plan_from_answer(answer: str) -> BackendPlan:
    """The plan is the first ```json block of the model's answer."""
    match = FENCED_JSON.search(answer)
    if match is None:
        raise PlanError("The model's answer has no ```json block with a plan.")
    return plan_validate(match.group(1))
