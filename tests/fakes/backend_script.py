"""An OpenAI emulator that answers the backend generator from a script, and the scripted projects.

The generator's prompts start with `Task: backend-plan|backend-code|backend-repair`; the script maps each
kind to a list of answers given in turn (the last one repeats). A kind without answers gets the usual echo,
so a test scripts only the steps it is about.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable

from .cloud import ChatInput, Reply, new_id
from .openai import FakeOpenAI

TASK = re.compile(r"^Task: ([\w-]+)", re.M)


class ScriptedOpenAI(FakeOpenAI):
    def __init__(self, script: dict[str, list[str]] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._script_lock = threading.Lock()
        self.script: dict[str, list[str]] = {kind: list(answers) for kind, answers in (script or {}).items()}
        self.asked: list[tuple[str, str]] = []  # (kind, prompt) of every scripted request, in order

    def set_script(self, kind: str, answers: Iterable[str]) -> None:
        with self._script_lock:
            self.script[kind] = list(answers)

    def _reply(self, model: str, given: ChatInput) -> Reply:
        match = TASK.search(given.last_user)
        kind = match.group(1) if match else ""
        with self._script_lock:
            answers = self.script.get(kind)
            if not answers:
                return super()._reply(model, given)
            text = answers.pop(0) if len(answers) > 1 else answers[0]
            self.asked.append((kind, given.last_user))
        # Whole lines as pieces: code keeps its exact white space when the stream is joined.
        pieces = tuple(re.findall(r"[^\n]*\n|[^\n]+$", text))
        prompt_tokens = sum(len(t.split()) for t in given.texts)
        return Reply(new_id(self.id_prefix), model, pieces, False, prompt_tokens)


# ---- the scripted project: items with a name and a price ------------------------------------------

PLAN = {
    "project_name": "shop-api",
    "entities": [
        {
            "name": "Item",
            "fields": [{"name": "name", "type": "str", "required": True}, {"name": "price", "type": "float"}],
        }
    ],
    "endpoints": [
        {"method": "POST", "path": "/items", "summary": "Add an item", "entity": "Item"},
        {"method": "GET", "path": "/items", "summary": "List items", "entity": "Item"},
        {"method": "GET", "path": "/items/{item_id}", "summary": "One item", "entity": "Item"},
    ],
    "auth": False,
}
PLAN_ANSWER = "Here is the plan.\n\n```json\n" + json.dumps(PLAN, indent=2) + "\n```\n"

ROUTER_HEAD = '''"""Endpoints for Item."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import get_session
from app.models import Item
from app.schemas import ItemCreate, ItemRead

router = APIRouter(tags=["items"])
SessionDep = Annotated[Session, Depends(get_session)]


@router.post("/items", response_model=ItemRead, status_code=201)
def create_item(payload: ItemCreate, session: SessionDep) -> Item:
    item = Item(**payload.model_dump())
    session.add(item)
    session.commit()
    session.refresh(item)
    return item


@router.get("/items", response_model=list[ItemRead])
def list_items(session: SessionDep) -> list[Item]:
    return list(session.scalars(select(Item).order_by(Item.id)))
'''
GOOD_GET = """

@router.get("/items/{item_id}", response_model=ItemRead)
def get_item(item_id: int, session: SessionDep) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="Item not found")
    return item
"""
# Forgets the 404: a missing item comes back as an empty 200.
BUGGY_GET = """

@router.get("/items/{item_id}")
def get_item(item_id: int, session: SessionDep) -> dict[str, object]:
    item = session.get(Item, item_id)
    if item is None:
        return {}
    return ItemRead.model_validate(item).model_dump()
"""
TESTS = """from fastapi.testclient import TestClient


def test_create_and_get_item(client: TestClient) -> None:
    created = client.post("/items", json={"name": "pen", "price": 1.5})
    assert created.status_code == 201
    item_id = created.json()["id"]
    fetched = client.get(f"/items/{item_id}")
    assert fetched.status_code == 200
    assert fetched.json()["name"] == "pen"


def test_list_items(client: TestClient) -> None:
    client.post("/items", json={"name": "cup", "price": 2.0})
    names = [item["name"] for item in client.get("/items").json()]
    assert "cup" in names


def test_missing_item_is_404(client: TestClient) -> None:
    assert client.get("/items/999999").status_code == 404
"""
# Reads the server's environment: the screener must refuse it before anything runs.
DANGEROUS_HELPER = """import os


def secret() -> str:
    return os.environ.get("SECRET_KEY", "")
"""


def files_answer(files: dict[str, str]) -> str:
    """An answer in the generator's format: `### path` and a fenced block per file."""
    blocks = [f"### {path}\n```python\n{content}```" for path, content in files.items()]
    return "Here are the files.\n\n" + "\n\n".join(blocks) + "\n"


GOOD_CODE = files_answer({"app/routers/items.py": ROUTER_HEAD + GOOD_GET, "tests/test_items.py": TESTS})
BUGGY_CODE = files_answer({"app/routers/items.py": ROUTER_HEAD + BUGGY_GET, "tests/test_items.py": TESTS})
FIXED_ROUTER = files_answer({"app/routers/items.py": ROUTER_HEAD + GOOD_GET})
# A "repair" that breaks listing too: the round after it scores worse than the one before.
WORSE_ROUTER = files_answer(
    {
        "app/routers/items.py": ROUTER_HEAD.replace(
            "return list(session.scalars(select(Item).order_by(Item.id)))", "return []"
        )
        + BUGGY_GET
    }
)
DANGEROUS_CODE = files_answer(
    {
        "app/routers/items.py": ROUTER_HEAD + GOOD_GET,
        "app/helpers.py": DANGEROUS_HELPER,
        "tests/test_items.py": TESTS,
    }
)
