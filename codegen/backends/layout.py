"""The deterministic layout of a generated backend, rendered from the plan with Jinja2 templates: the
structure (package, database, models, schemas, one router module per entity, test set-up) is right even
when the model is weak; the model writes the endpoints and the tests into it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from codegen.backends.plan import BackendPlan, PlanEndpoint, PlanEntity, PlanField

PACKAGE = "app"
GENERAL_MODULE = "general"
# plan type -> (Python annotation, SQLAlchemy column type, the datetime import it needs)
TYPES: dict[str, tuple[str, str, str | None]] = {
    "str": ("str", "String(200)", None),
    "int": ("int", "Integer", None),
    "float": ("float", "Float", None),
    "bool": ("bool", "Boolean", None),
    "date": ("date", "Date", "date"),
    "datetime": ("datetime", "DateTime", "datetime"),
}

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "layout"),
    undefined=StrictUndefined,
    autoescape=False,  # Python and Markdown, not HTML
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class _Field:
    name: str
    python: str
    column: str
    required: bool


@dataclass(frozen=True)
class _Entity:
    name: str
    plural: str
    fields: list[_Field]


def _field(field: PlanField) -> _Field:
    python, column, _ = TYPES[field.type]
    return _Field(field.name, python, column, field.required)


def _entity(entity: PlanEntity) -> _Entity:
    return _Entity(entity.name, entity.plural, [_field(f) for f in entity.fields])


def router_modules(plan: BackendPlan) -> dict[str, tuple[PlanEntity | None, list[PlanEndpoint]]]:
    """Router module name -> its entity and endpoints: one per entity, plus one for the rest if any."""
    modules: dict[str, tuple[PlanEntity | None, list[PlanEndpoint]]] = {
        entity.plural: (entity, [e for e in plan.endpoints if e.entity == entity.name]) for entity in plan.entities
    }
    general = [e for e in plan.endpoints if e.entity is None]
    if general:
        modules[GENERAL_MODULE] = (None, general)
    return modules


def layout_render(*, plan: BackendPlan, requirements: str) -> dict[str, str]:
    """Every file of the skeleton, by relative path."""
    entities = [_entity(e) for e in plan.entities]
    kinds = {f.type for e in plan.entities for f in e.fields}
    python_imports = sorted({TYPES[k][2] for k in kinds if TYPES[k][2]})
    sa_imports = sorted({"Integer"} | {TYPES[k][1].split("(")[0] for k in kinds})
    modules = router_modules(plan)
    context = {
        "plan": plan,
        "entities": entities,
        "python_imports": python_imports,
        "sa_imports": sa_imports,
        "modules": list(modules),
        "requirements": requirements.strip(),
    }
    files = {
        f"{PACKAGE}/__init__.py": "",
        f"{PACKAGE}/db.py": _templates.get_template("db.py.j2").render(context),
        f"{PACKAGE}/models.py": _templates.get_template("models.py.j2").render(context),
        f"{PACKAGE}/schemas.py": _templates.get_template("schemas.py.j2").render(context),
        f"{PACKAGE}/main.py": _templates.get_template("main.py.j2").render(context),
        f"{PACKAGE}/routers/__init__.py": "",
        "tests/__init__.py": "",
        "tests/conftest.py": _templates.get_template("conftest.py.j2").render(context),
        "requirements.txt": _templates.get_template("requirements.txt.j2").render(context),
        "README.md": _templates.get_template("README.md.j2").render(context),
    }
    router = _templates.get_template("router.py.j2")
    for module, (entity, endpoints) in modules.items():
        files[f"{PACKAGE}/routers/{module}.py"] = router.render(entity=entity, endpoints=endpoints, tag=module)
    return files
