"""The plan schema and reading the plan from a model's answer."""

import json

import pytest

from codegen.backends.plan import PlanError, plan_from_answer, plan_validate
from tests.fakes.backend_script import PLAN, PLAN_ANSWER


def test_the_first_json_block_is_the_plan() -> None:
    answer = PLAN_ANSWER + '\n```json\n{"project_name": "second"}\n```\n'
    plan = plan_from_answer(answer)
    assert plan.project_name == "shop-api"
    assert [e.name for e in plan.entities] == ["Item"] and plan.entities[0].plural == "items"
    assert [(e.method, e.path) for e in plan.endpoints][0] == ("POST", "/items")


def test_an_answer_without_a_json_block_is_refused() -> None:
    with pytest.raises(PlanError, match="no ```json block"):
        plan_from_answer('{"project_name": "x"}')


def test_methods_are_upper_cased_and_extra_keys_ignored() -> None:
    data = {**PLAN, "description": "extra", "endpoints": [{"method": "get", "path": "/items", "entity": "Item"}]}
    assert plan_validate(data).endpoints[0].method == "GET"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"project_name": "Bad Name"}, "project_name"),
        ({"entities": []}, "entities"),
        ({"entities": [{"name": "item", "fields": [{"name": "x", "type": "str"}]}]}, "entities.0.name"),
        ({"entities": [{"name": "Item", "fields": [{"name": "id", "type": "int"}]}]}, "cannot be a field name"),
        ({"entities": [{"name": "Item", "fields": [{"name": "class", "type": "int"}]}]}, "cannot be a field name"),
        ({"entities": [{"name": "Item", "fields": [{"name": "x", "type": "bytes"}]}]}, "type"),
        ({"endpoints": [{"method": "GET", "path": "/../etc", "entity": "Item"}]}, "path"),
        ({"endpoints": [{"method": "GET", "path": "/x", "entity": "Order"}]}, "unknown entity 'Order'"),
        ({"endpoints": [{"method": "GET", "path": "/x"}, {"method": "GET", "path": "/x"}]}, "listed twice"),
    ],
)
def test_bad_plans_say_what_is_wrong(change: dict, message: str) -> None:
    with pytest.raises(PlanError, match="does not fit the schema") as error:
        plan_validate({**PLAN, **change})
    assert message in str(error.value)


def test_a_plan_may_come_as_json_text() -> None:
    assert plan_validate(json.dumps(PLAN)).project_name == "shop-api"
    with pytest.raises(PlanError, match="not valid JSON"):
        plan_validate("{")
