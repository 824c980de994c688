"""Ordinary generated programs the screener must accept: APIs, models, tests and algorithms.

Kept as strings (data, never run) so that this project's linters and test collection leave them alone.
"""

from textwrap import dedent


def _program(code: str) -> str:
    return dedent(code).lstrip("\n")


ACCEPTED: dict[str, str] = {
    "fastapi_crud_routes": _program(
        """
        from fastapi import Depends, FastAPI, HTTPException, status
        from pydantic import BaseModel, Field

        app = FastAPI(title="Items API")


        class ItemIn(BaseModel):
            name: str = Field(min_length=1, max_length=50)
            price: float = Field(gt=0)


        class Item(ItemIn):
            id: int


        class Store:
            def __init__(self) -> None:
                self.items: dict[int, Item] = {}
                self.next_id = 1

            def add(self, data: ItemIn) -> Item:
                item = Item(id=self.next_id, **data.model_dump())
                self.items[item.id] = item
                self.next_id += 1
                return item


        store = Store()


        def get_store() -> Store:
            return store


        @app.post("/items", response_model=Item, status_code=status.HTTP_201_CREATED)
        def create_item(data: ItemIn, db: Store = Depends(get_store)) -> Item:
            return db.add(data)


        @app.get("/items/{item_id}", response_model=Item)
        def read_item(item_id: int, db: Store = Depends(get_store)) -> Item:
            item = db.items.get(item_id)
            if item is None:
                raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="Item not found")
            return item


        @app.get("/items", response_model=list[Item])
        def list_items(limit: int = 10, db: Store = Depends(get_store)) -> list[Item]:
            return list(db.items.values())[:limit]


        @app.delete("/items/{item_id}", status_code=204)
        def delete_item(item_id: int, db: Store = Depends(get_store)) -> None:
            if db.items.pop(item_id, None) is None:
                raise HTTPException(status_code=404, detail="Item not found")
        """
    ),
    "fastapi_annotated_auth": _program(
        """
        from typing import Annotated

        from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
        from fastapi.responses import JSONResponse

        router = APIRouter(prefix="/v1")
        TOKENS = {"secret-token": "alice"}


        def current_user(authorization: Annotated[str | None, Header()] = None) -> str:
            if not authorization or not authorization.startswith("Bearer "):
                raise HTTPException(status_code=401, detail="Missing bearer token")
            user = TOKENS.get(authorization.removeprefix("Bearer "))
            if user is None:
                raise HTTPException(status_code=403, detail="Unknown token")
            return user


        @router.get("/search")
        def search(
            request: Request,
            user: Annotated[str, Depends(current_user)],
            q: Annotated[str, Query(min_length=2, max_length=50)],
            page: int = 1,
        ) -> JSONResponse:
            client = request.client.host if request.client else "unknown"
            return JSONResponse({"user": user, "query": q, "page": page, "client": client})
        """
    ),
    "pydantic_validators": _program(
        """
        from datetime import date

        from pydantic import BaseModel, ConfigDict, EmailStr, field_validator, model_validator


        class Signup(BaseModel):
            model_config = ConfigDict(str_strip_whitespace=True)

            username: str
            email: EmailStr
            password: str
            password_confirm: str
            birthday: date | None = None

            @field_validator("username")
            @classmethod
            def username_is_alphanumeric(cls, value: str) -> str:
                if not value.isalnum():
                    raise ValueError("username must be alphanumeric")
                return value.lower()

            @model_validator(mode="after")
            def passwords_match(self) -> "Signup":
                if self.password != self.password_confirm:
                    raise ValueError("passwords do not match")
                return self
        """
    ),
    "dataclass_post_init": _program(
        """
        from dataclasses import dataclass, field


        @dataclass(frozen=True)
        class Rectangle:
            width: float
            height: float
            area: float = field(init=False)

            def __post_init__(self) -> None:
                if self.width <= 0 or self.height <= 0:
                    raise ValueError("sides must be positive")
                object.__setattr__(self, "area", self.width * self.height)


        @dataclass
        class Inventory:
            items: list[str] = field(default_factory=list)

            def add(self, item: str) -> None:
                self.items.append(item)
        """
    ),
    "enum_state_machine": _program(
        """
        from enum import Enum, auto


        class State(Enum):
            DRAFT = auto()
            REVIEW = auto()
            PUBLISHED = auto()


        TRANSITIONS: dict[State, set[State]] = {
            State.DRAFT: {State.REVIEW},
            State.REVIEW: {State.DRAFT, State.PUBLISHED},
            State.PUBLISHED: set(),
        }


        def advance(current: State, target: State) -> State:
            if target not in TRANSITIONS[current]:
                raise ValueError(f"cannot go from {current.name} to {target.name}")
            return target
        """
    ),
    "pytest_fixtures_parametrize": _program(
        """
        import pytest


        def divide(a: float, b: float) -> float:
            if b == 0:
                raise ZeroDivisionError("division by zero")
            return a / b


        @pytest.fixture
        def numbers() -> list[int]:
            return [1, 2, 3]


        @pytest.fixture(params=[1, 2])
        def factor(request: pytest.FixtureRequest) -> int:
            return request.param


        @pytest.mark.parametrize(("a", "b", "expected"), [(6, 3, 2), (1, 4, 0.25)])
        def test_divide(a: float, b: float, expected: float) -> None:
            assert divide(a, b) == pytest.approx(expected)


        def test_divide_by_zero() -> None:
            with pytest.raises(ZeroDivisionError, match="division by zero"):
                divide(1, 0)


        def test_sum(numbers: list[int], factor: int, capsys: pytest.CaptureFixture[str]) -> None:
            print(sum(numbers) * factor)
            assert capsys.readouterr().out.strip() in {"6", "12"}
        """
    ),
    "pytest_fastapi_testclient": _program(
        """
        import pytest
        from fastapi import FastAPI
        from fastapi.testclient import TestClient

        app = FastAPI()


        @app.get("/health")
        def health() -> dict[str, str]:
            return {"status": "ok"}


        @pytest.fixture
        def client() -> TestClient:
            return TestClient(app)


        def test_health(client: TestClient) -> None:
            response = client.get("/health")
            assert response.status_code == 200
            assert response.json() == {"status": "ok"}


        def test_missing_route(client: TestClient) -> None:
            assert client.get("/nope").status_code == 404
        """
    ),
    "pytest_async_httpx_asgi": _program(
        """
        import httpx
        import pytest
        from fastapi import FastAPI

        app = FastAPI()


        @app.get("/ping")
        async def ping() -> dict[str, bool]:
            return {"pong": True}


        @pytest.mark.anyio
        async def test_ping() -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                response = await client.get("/ping")
            assert response.json() == {"pong": True}
        """
    ),
    "unittest_mock_patch_object": _program(
        """
        import unittest
        from unittest.mock import MagicMock, patch


        class Mailer:
            def send(self, to: str, body: str) -> bool:
                return False  # the real one talks to an SMTP server; the tests patch it


        def notify(mailer: Mailer, users: list[str]) -> int:
            return sum(1 for user in users if mailer.send(user, "hello"))


        class NotifyTest(unittest.TestCase):
            def test_counts_sent(self) -> None:
                mailer = Mailer()
                with patch.object(mailer, "send", return_value=True) as send:
                    self.assertEqual(notify(mailer, ["a", "b"]), 2)
                send.assert_called_with("b", "hello")

            def test_magic_mock(self) -> None:
                fake = MagicMock(spec=Mailer)
                fake.send.return_value = False
                self.assertEqual(notify(fake, ["a"]), 0)


        if __name__ == "__main__":
            unittest.main(verbosity=2)
        """
    ),
    "sorting_algorithms": _program(
        """
        def merge_sort(items: list[int]) -> list[int]:
            if len(items) <= 1:
                return items
            middle = len(items) // 2
            left, right = merge_sort(items[:middle]), merge_sort(items[middle:])
            merged: list[int] = []
            i = j = 0
            while i < len(left) and j < len(right):
                if left[i] <= right[j]:
                    merged.append(left[i])
                    i += 1
                else:
                    merged.append(right[j])
                    j += 1
            return merged + left[i:] + right[j:]


        def quicksort(items: list[int]) -> list[int]:
            if len(items) < 2:
                return items
            pivot, *rest = items
            return quicksort([x for x in rest if x < pivot]) + [pivot] + quicksort([x for x in rest if x >= pivot])
        """
    ),
    "binary_search_bisect": _program(
        """
        from bisect import bisect_left


        def binary_search(items: list[int], target: int) -> int:
            low, high = 0, len(items) - 1
            while low <= high:
                mid = (low + high) // 2
                if items[mid] == target:
                    return mid
                if items[mid] < target:
                    low = mid + 1
                else:
                    high = mid - 1
            return -1


        def contains(items: list[int], target: int) -> bool:
            index = bisect_left(items, target)
            return index < len(items) and items[index] == target
        """
    ),
    "dynamic_programming": _program(
        """
        from functools import lru_cache


        def longest_common_subsequence(a: str, b: str) -> int:
            table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
            for i, char_a in enumerate(a, start=1):
                for j, char_b in enumerate(b, start=1):
                    if char_a == char_b:
                        table[i][j] = table[i - 1][j - 1] + 1
                    else:
                        table[i][j] = max(table[i - 1][j], table[i][j - 1])
            return table[-1][-1]


        @lru_cache(maxsize=None)
        def fib(n: int) -> int:
            return n if n < 2 else fib(n - 1) + fib(n - 2)


        def coin_change(coins: list[int], amount: int) -> int:
            best = [0] + [amount + 1] * amount
            for value in range(1, amount + 1):
                for coin in coins:
                    if coin <= value:
                        best[value] = min(best[value], best[value - coin] + 1)
            return best[amount] if best[amount] <= amount else -1
        """
    ),
    "graph_bfs_dfs": _program(
        """
        from collections import defaultdict, deque


        def build_graph(edges: list[tuple[str, str]]) -> dict[str, list[str]]:
            graph: dict[str, list[str]] = defaultdict(list)
            for a, b in edges:
                graph[a].append(b)
                graph[b].append(a)
            return graph


        def bfs(graph: dict[str, list[str]], start: str) -> list[str]:
            seen, order, queue = {start}, [], deque([start])
            while queue:
                node = queue.popleft()
                order.append(node)
                for neighbour in graph[node]:
                    if neighbour not in seen:
                        seen.add(neighbour)
                        queue.append(neighbour)
            return order


        def dfs(graph: dict[str, list[str]], node: str, seen: set[str] | None = None) -> list[str]:
            seen = seen if seen is not None else set()
            seen.add(node)
            result = [node]
            for neighbour in graph[node]:
                if neighbour not in seen:
                    result += dfs(graph, neighbour, seen)
            return result
        """
    ),
    "dijkstra_heapq": _program(
        """
        import heapq
        import math


        def dijkstra(graph: dict[str, dict[str, float]], source: str) -> dict[str, float]:
            distances = {node: math.inf for node in graph}
            distances[source] = 0.0
            heap: list[tuple[float, str]] = [(0.0, source)]
            while heap:
                distance, node = heapq.heappop(heap)
                if distance > distances[node]:
                    continue
                for neighbour, weight in graph[node].items():
                    candidate = distance + weight
                    if candidate < distances.get(neighbour, float("inf")):
                        distances[neighbour] = candidate
                        heapq.heappush(heap, (candidate, neighbour))
            return distances
        """
    ),
    "text_processing_re_json": _program(
        """
        import json
        import re
        from collections import Counter

        WORD = re.compile(r"[a-z']+")
        EMAIL = re.compile(r"(?P<user>[\\w.+-]+)@(?P<domain>[\\w-]+\\.[\\w.]+)")


        def word_counts(text: str, top: int = 3) -> str:
            counts = Counter(WORD.findall(text.lower()))
            return json.dumps(dict(counts.most_common(top)), indent=2, sort_keys=True)


        def domains(text: str) -> list[str]:
            return sorted({match.group("domain") for match in EMAIL.finditer(text)})


        def parse_config(raw: str) -> dict[str, object]:
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as error:
                raise ValueError(f"invalid config at line {error.lineno}") from error
            return {key.strip(): value for key, value in data.items()}


        def slugify(title: str) -> str:
            return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        """
    ),
    "datetime_arithmetic": _program(
        """
        from datetime import date, datetime, timedelta, timezone
        from zoneinfo import ZoneInfo


        def business_days(start: date, end: date) -> int:
            days = 0
            current = start
            while current <= end:
                if current.weekday() < 5:
                    days += 1
                current += timedelta(days=1)
            return days


        def next_meeting(now: datetime | None = None) -> datetime:
            now = now or datetime.now(timezone.utc)
            paris = now.astimezone(ZoneInfo("Europe/Paris"))
            meeting = paris.replace(hour=10, minute=0, second=0, microsecond=0)
            return meeting if meeting > paris else meeting + timedelta(days=1)


        def age(birthday: date, today: date) -> int:
            return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))


        print(date.fromisoformat("2024-01-15").strftime("%d %B %Y"))
        """
    ),
    "decimal_money": _program(
        """
        from decimal import ROUND_HALF_UP, Decimal

        CENT = Decimal("0.01")


        class Money:
            def __init__(self, amount: str | Decimal, currency: str = "EUR") -> None:
                self.amount = Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)
                self.currency = currency

            def __add__(self, other: "Money") -> "Money":
                if other.currency != self.currency:
                    raise ValueError("currency mismatch")
                return Money(self.amount + other.amount, self.currency)

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Money) and (self.amount, self.currency) == (other.amount, other.currency)

            def __hash__(self) -> int:
                return hash((self.amount, self.currency))

            def __repr__(self) -> str:
                return f"{type(self).__name__}({str(self.amount)!r}, {self.currency!r})"

            def split(self, parts: int) -> list["Money"]:
                share = (self.amount / parts).quantize(CENT, rounding=ROUND_HALF_UP)
                shares = [Money(share, self.currency) for _ in range(parts - 1)]
                return shares + [Money(self.amount - share * (parts - 1), self.currency)]


        print("{:.2f}".format(Money("10.005").amount))
        """
    ),
    "typing_protocol_generic": _program(
        """
        from collections.abc import Callable, Iterator
        from typing import Any, Generic, Optional, Protocol, TypeVar


        class SupportsLessThan(Protocol):
            def __lt__(self, other: Any, /) -> bool: ...


        T = TypeVar("T")
        K = TypeVar("K", bound=SupportsLessThan)


        class Stack(Generic[T]):
            def __init__(self) -> None:
                self._items: list[T] = []

            def push(self, item: T) -> None:
                self._items.append(item)

            def pop(self) -> Optional[T]:
                return self._items.pop() if self._items else None

            def __len__(self) -> int:
                return len(self._items)

            def __iter__(self) -> Iterator[T]:
                return iter(reversed(self._items))


        def largest(items: list[K]) -> K:
            return max(items)


        def apply_all(functions: list[Callable[[T], T]], value: T) -> T:
            for function in functions:
                value = function(value)
            return value
        """
    ),
    "async_httpx_client": _program(
        """
        import asyncio

        import httpx


        async def fetch_json(client: httpx.AsyncClient, url: str) -> dict[str, object]:
            response = await client.get(url, timeout=10.0)
            response.raise_for_status()
            return response.json()


        async def fetch_all(urls: list[str], limit: int = 5) -> list[dict[str, object]]:
            semaphore = asyncio.Semaphore(limit)

            async def bounded(client: httpx.AsyncClient, url: str) -> dict[str, object]:
                async with semaphore:
                    return await fetch_json(client, url)

            async with httpx.AsyncClient(headers={"Accept": "application/json"}) as client:
                return await asyncio.gather(*(bounded(client, url) for url in urls))


        if __name__ == "__main__":
            print(asyncio.run(fetch_all(["https://api.example.com/items"])))
        """
    ),
    "exception_subclass_super_init": _program(
        """
        class AppError(Exception):
            def __init__(self, message: str, code: int = 500) -> None:
                super().__init__(message)
                self.code = code


        class NotFoundError(AppError):
            def __init__(self, item_id: int) -> None:
                super().__init__(f"Item {item_id} not found", code=404)
                self.item_id = item_id

            def __str__(self) -> str:
                return f"[{self.code}] item {self.item_id} is missing"


        def find(items: dict[int, str], item_id: int) -> str:
            try:
                return items[item_id]
            except KeyError as error:
                raise NotFoundError(item_id) from error
        """
    ),
    "context_manager_protocol": _program(
        """
        import time
        from contextlib import contextmanager, suppress


        class Timer:
            def __init__(self, label: str) -> None:
                self.label = label
                self.elapsed = 0.0

            def __enter__(self) -> "Timer":
                self.start = time.perf_counter()
                return self

            def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
                self.elapsed = time.perf_counter() - self.start


        @contextmanager
        def tag(name: str):
            print(f"<{name}>")
            yield name
            print(f"</{name}>")


        with Timer("work") as timer, tag("p"):
            with suppress(KeyError):
                {}["missing"]
        print(round(timer.elapsed, 3))
        """
    ),
    "match_walrus_comprehensions": _program(
        """
        def handle(command: str) -> str:
            match command.split():
                case ["go", direction]:
                    return f"going {direction}"
                case ["pick", *things] if things:
                    return "picked " + ", ".join(things)
                case ["quit" | "exit"]:
                    return "bye"
                case _:
                    return "unknown"


        def chunks(data: list[int], size: int) -> list[list[int]]:
            return [chunk for i in range(0, len(data), size) if (chunk := data[i : i + size])]


        def describe(event: dict[str, object]) -> str:
            match event:
                case {"type": "click", "x": int(x), "y": int(y)}:
                    return f"click at {x},{y}"
                case {"type": str(kind)}:
                    return kind
            return "?"
        """
    ),
    "namedtuple_itertools_statistics": _program(
        """
        import itertools
        import statistics
        from collections import namedtuple
        from operator import attrgetter, itemgetter

        Point = namedtuple("Point", ["x", "y"])


        def centroid(points: list[Point]) -> Point:
            return Point(statistics.fmean(p.x for p in points), statistics.fmean(p.y for p in points))


        def pairs(values: list[int]) -> list[tuple[int, int]]:
            return list(itertools.combinations(sorted(values), 2))


        def moved(point: Point, dx: float) -> dict[str, float]:
            return point._replace(x=point.x + dx)._asdict()


        rows = [{"name": "b", "score": 2}, {"name": "a", "score": 3}]
        print(sorted(rows, key=itemgetter("score")), sorted([Point(2, 1), Point(1, 2)], key=attrgetter("x")))
        """
    ),
    "secure_tokens_hashing": _program(
        """
        import base64
        import hashlib
        import secrets
        import uuid


        def new_api_key() -> str:
            return f"key_{secrets.token_urlsafe(24)}"


        def fingerprint(key: str) -> str:
            return hashlib.sha256(key.encode()).hexdigest()[:16]


        def same(a: str, b: str) -> bool:
            return secrets.compare_digest(a, b)


        def encode_id() -> str:
            return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        """
    ),
    "future_annotations_model": _program(
        """
        from __future__ import annotations

        from dataclasses import dataclass


        @dataclass
        class Node:
            value: int
            children: list[Node]

            def total(self) -> int:
                return self.value + sum(child.total() for child in self.children)


        def leaf(value: int) -> Node:
            return Node(value, [])


        print(Node(1, [leaf(2), leaf(3)]).total())
        """
    ),
    "pydantic_aliases_and_generics": _program(
        """
        from typing import Generic, TypeVar

        from pydantic import AliasChoices, AliasPath, BaseModel, ConfigDict, Field, RootModel
        from pydantic.alias_generators import to_camel

        T = TypeVar("T")


        class Page(BaseModel, Generic[T]):
            items: list[T]
            total: int


        class User(BaseModel):
            model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)

            user_name: str = Field(alias="userName")
            city: str = Field(validation_alias=AliasChoices("city", AliasPath("address", "city")))


        class Tags(RootModel[list[str]]):
            pass


        UserPage = Page[User]
        print(UserPage(items=[], total=0).model_dump(), Tags(["a"]).root)
        """
    ),
    "stdlib_corner_cases": _program(
        """
        import datetime
        import string
        from enum import Enum
        from http import HTTPStatus


        class Color(Enum):
            RED = 1
            GREEN = 2


        class Registry:
            _instance = None

            def __new__(cls) -> "Registry":
                if cls._instance is None:
                    cls._instance = super().__new__(cls)
                return cls._instance


        class ValidationFailed(ValueError):
            def __init__(self, field_name: str) -> None:
                ValueError.__init__(self, f"{field_name} is invalid")
                self.field_name = field_name


        class Point:
            __match_args__ = ("x", "y")

            def __init__(self, x: int, y: int) -> None:
                self.x, self.y = x, y


        def caesar(text: str, shift: int) -> str:
            letters = string.ascii_lowercase
            return "".join(letters[(letters.index(c) + shift) % 26] if c in letters else c for c in text)


        def quadrant(point: Point) -> str:
            match point:
                case Point(0, 0):
                    return "origin"
                case Point(x, y) if x > 0 and y > 0:
                    return "first"
            return "other"


        def color(name: str) -> Color:
            return Color[name.upper()]


        opening = datetime.time.fromisoformat("09:30")
        print(caesar("abc", 3), HTTPStatus(404).phrase, Registry() is Registry(), opening, color("red"))
        """
    ),
    "pytest_fixture_variants": _program(
        """
        import pytest


        @pytest.fixture(params=["sqlite", "memory"])
        def backend(request: pytest.FixtureRequest) -> str:
            return request.param


        @pytest.fixture
        def numbers() -> list[int]:
            data = [3, 1, 2]
            yield data
            data.clear()


        def fib(n: int, cache: dict[int, int]) -> int:
            if n not in cache:
                cache[n] = n if n < 2 else fib(n - 1, cache) + fib(n - 2, cache)
            return cache[n]


        @pytest.mark.anyio
        async def test_async_backend(backend: str) -> None:
            assert backend in {"sqlite", "memory"}


        @pytest.mark.parametrize("n,expected", [pytest.param(10, 55, id="ten"), (1, 1)])
        def test_fib(n: int, expected: int) -> None:
            assert fib(n, {}) == expected


        @pytest.mark.skipif(False, reason="always runs")
        def test_sorted(numbers: list[int]) -> None:
            with pytest.raises(ZeroDivisionError, match="division"):
                print(1 / (len(numbers) - 3))
            assert sorted(numbers) == [1, 2, 3]
        """
    ),
}
