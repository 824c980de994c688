"""The deterministic layout: the same plan gives the same files, and they pass the screener as they are."""

from codegen.backends.layout import layout_render
from codegen.backends.plan import plan_validate
from codegen.backends.validation import package_modules
from codegen.screening import backend_policy, screen_code
from tests.fakes.backend_script import PLAN

PLAN_WITH_TYPES = {
    **PLAN,
    "entities": [
        *PLAN["entities"],
        {
            "name": "OrderLine",
            "fields": [
                {"name": "placed", "type": "datetime"},
                {"name": "due", "type": "date", "required": False},
                {"name": "paid", "type": "bool"},
                {"name": "count", "type": "int"},
            ],
        },
    ],
    "endpoints": [*PLAN["endpoints"], {"method": "GET", "path": "/health", "summary": "Alive?", "entity": None}],
}


def test_the_layout_has_the_structure_of_the_plan() -> None:
    files = layout_render(plan=plan_validate(PLAN_WITH_TYPES), requirements="Shop")
    assert {
        "app/__init__.py",
        "app/db.py",
        "app/models.py",
        "app/schemas.py",
        "app/main.py",
        "app/routers/__init__.py",
        "app/routers/items.py",
        "app/routers/order_lines.py",
        "app/routers/general.py",
        "tests/__init__.py",
        "tests/conftest.py",
        "requirements.txt",
        "README.md",
    } == set(files)
    assert "class OrderLine(Base):" in files["app/models.py"]
    assert "due: Mapped[date | None] = mapped_column(Date, nullable=True)" in files["app/models.py"]
    assert "class OrderLineRead(OrderLineCreate):" in files["app/schemas.py"]
    assert "from app.routers import items, order_lines, general" in files["app/main.py"]
    assert "#   GET /health - Alive?" in files["app/routers/general.py"]
    assert layout_render(plan=plan_validate(PLAN_WITH_TYPES), requirements="Shop") == files


def test_the_layout_passes_the_screener_and_ruff_untouched() -> None:
    files = layout_render(plan=plan_validate(PLAN_WITH_TYPES), requirements="Shop")
    policy = backend_policy("app", package_modules(files))
    for path, code in files.items():
        if path.endswith(".py"):
            result = screen_code(code, use_bandit=False, policy=policy)
            assert result.findings == [], (path, result.findings)


def test_package_modules_are_dotted_and_relative() -> None:
    files = {"app/__init__.py": "", "app/routers/__init__.py": "", "app/routers/items.py": "", "README.md": ""}
    assert package_modules(files) == frozenset({"routers", "routers.items"})
