"""Code mode of the emulators: instead of echoing, a prompt that asks for code gets a fenced Python answer.

A newcomer trying the Code page against the emulators should see a screened answer pass, not the echo of
their prompt fail the screener. So: a test-generation prompt (the app's `codegen/prompts/tests.md.j2`) gets
a pytest module with tests for the endpoints it names; any other request for code gets a small, safe module
chosen from the request's words (Fibonacci, factorial, primes, palindromes, sorting, word counts...), with a
generic text helper when none fits. Everything stays inside the screener's allowlists: no files, processes,
sockets or eval. Deterministic: the same prompt always gets the same answer.

`code_answer()` is all the emulators call; it returns None for a prompt that is not about code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

FENCE = "```"
TESTS_MARKER = re.compile(r"pytest test module for the HTTP API", re.I)
# A line of the test-generation prompt naming one endpoint: "- GET /pets/{petId} — Find a pet".
ENDPOINT_LINE = re.compile(r"^- (GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/\S*)", re.M)
RESPONSES_LINE = re.compile(r"^\s+responses: (.*)$", re.M)
MAX_TESTS = re.compile(r"at most (\d+) tests? each", re.I)
# The system prompt the app's code generation sends, and words that ask for code in a plain chat.
CODE_SYSTEM = re.compile(r"\bcode only\b|\bwrite python\b", re.I)
CODE_REQUEST = re.compile(
    r"\b(function|class|def|python|code|script|implement|module|dataclass|algorithm|program|sieve)\b", re.I
)
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def code_answer(*, system: str, prompt: str) -> str | None:
    """The answer in code mode, or None when the prompt does not ask for code (the caller echoes then)."""
    if TESTS_MARKER.search(prompt):
        return _fenced(tests_module(prompt))
    if CODE_SYSTEM.search(system) or CODE_REQUEST.search(prompt):
        return _fenced(solution(prompt))
    return None


def _fenced(code: str) -> str:
    return f"{FENCE}python\n{code.rstrip()}\n{FENCE}"


# --- a module for an ordinary request ------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    words: tuple[str, ...]  # any of these in the request picks the recipe
    code: str


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        ("fibonacci", "fib"),
        '''def fibonacci(n: int) -> int:
    """The n-th Fibonacci number, counting fibonacci(0) == 0 and fibonacci(1) == 1."""
    if n < 0:
        raise ValueError("n must not be negative")
    previous, current = 0, 1
    for _ in range(n):
        previous, current = current, previous + current
    return previous
''',
    ),
    Recipe(
        ("factorial",),
        '''def factorial(n: int) -> int:
    """n! for a non-negative n."""
    if n < 0:
        raise ValueError("n must not be negative")
    result = 1
    for factor in range(2, n + 1):
        result *= factor
    return result
''',
    ),
    Recipe(
        ("prime", "primes"),
        '''def is_prime(n: int) -> bool:
    """Whether n is a prime number (trial division up to its square root)."""
    if n < 2:
        return False
    divisor = 2
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 1
    return True


def primes_up_to(limit: int) -> list[int]:
    """Every prime not greater than limit, in order."""
    return [n for n in range(2, limit + 1) if is_prime(n)]
''',
    ),
    Recipe(
        ("palindrome",),
        '''def is_palindrome(text: str) -> bool:
    """Whether text reads the same backwards, ignoring case and anything but letters and digits."""
    kept = [c.lower() for c in text if c.isalnum()]
    return kept == kept[::-1]
''',
    ),
    Recipe(
        ("sort", "sorted", "sorting"),
        '''def merge_sort(items: list[int]) -> list[int]:
    """A new list with the items in ascending order (stable merge sort)."""
    if len(items) <= 1:
        return list(items)
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
''',
    ),
    Recipe(
        ("fizzbuzz", "fizz"),
        '''def fizzbuzz(n: int) -> list[str]:
    """FizzBuzz from 1 to n."""
    lines = []
    for i in range(1, n + 1):
        word = ("Fizz" if i % 3 == 0 else "") + ("Buzz" if i % 5 == 0 else "")
        lines.append(word or str(i))
    return lines
''',
    ),
    Recipe(
        ("reverse",),
        '''def reverse_words(text: str) -> str:
    """The words of text in reverse order, separated by single spaces."""
    return " ".join(reversed(text.split()))
''',
    ),
    Recipe(
        ("gcd", "divisor"),
        '''def gcd(a: int, b: int) -> int:
    """The greatest common divisor of a and b (Euclid's algorithm)."""
    a, b = abs(a), abs(b)
    while b:
        a, b = b, a % b
    return a
''',
    ),
    Recipe(
        ("email", "validate"),
        '''import re

EMAIL = re.compile(r"^[^@\\s]+@[^@\\s]+\\.[A-Za-z]{2,}$")


def is_valid_email(address: str) -> bool:
    """Whether address looks like an e-mail address (one @, a dot in the domain, no spaces)."""
    return bool(EMAIL.match(address))
''',
    ),
)

GENERIC = '''from collections import Counter


def word_counts(text: str) -> dict[str, int]:
    """How often each word occurs in text, case-insensitively, most frequent first."""
    counts = Counter(word.strip(".,;:!?\\"'()").lower() for word in text.split())
    counts.pop("", None)
    return dict(counts.most_common())
'''


def solution(prompt: str) -> str:
    words = set(re.findall(r"[a-z]+", prompt.lower()))
    chosen = next((r.code for r in RECIPES if words.intersection(r.words)), GENERIC)
    request = " ".join(prompt.split())[:200].replace('"""', "'''")
    return f'"""{request}"""\n\n{chosen}' if request else chosen


# --- a pytest module for a test-generation prompt ------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    success: int  # the first 2xx status the prompt lists (200 when none)
    statuses: tuple[int, ...]

    @property
    def slug(self) -> str:
        words = re.findall(r"[A-Za-z0-9]+", self.path.replace("{", " by ").replace("}", " "))
        return "_".join([self.method.lower(), *(w.lower() for w in words)]) or self.method.lower()

    @property
    def concrete_path(self) -> str:
        return re.sub(r"\{[^}]+\}", "1", self.path)


def _endpoints(prompt: str) -> list[Endpoint]:
    found: list[Endpoint] = []
    matches = list(ENDPOINT_LINE.finditer(prompt))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(prompt)
        block = prompt[match.end() : end]
        responses = RESPONSES_LINE.search(block)
        statuses = tuple(int(c) for c in re.findall(r"\b([1-5]\d\d)\b", responses.group(1))) if responses else ()
        success = next((s for s in statuses if 200 <= s < 300), 200)
        found.append(Endpoint(match.group(1), match.group(2), success, statuses))
    return found


def _tests_for(endpoint: Endpoint, limit: int) -> Iterable[str]:
    path = endpoint.concrete_path
    has_body = endpoint.method in ("POST", "PUT", "PATCH")
    # What a well-behaved server may answer: a made-up id can be unknown, an empty body invalid.
    allowed = [endpoint.success]
    if "{" in endpoint.path:
        allowed.append(404)
    if has_body:
        allowed += [400, 422]
    expected = f"== {allowed[0]}" if len(allowed) == 1 else f"in {tuple(allowed)}"
    body = ", json={}" if has_body else ""
    yield f"""def test_{endpoint.slug}_answers_{endpoint.success}(client: httpx.Client) -> None:
    response = client.request("{endpoint.method}", "{path}"{body})

    assert response.status_code {expected}
"""
    if limit >= 2:
        yield f"""def test_{endpoint.slug}_unknown_sub_path_is_not_found(client: httpx.Client) -> None:
    response = client.request("{endpoint.method}", "{path.rstrip("/")}/no-such-thing"{body})

    assert response.status_code in (404, 405)
"""
    if limit >= 3 and has_body:
        yield f"""def test_{endpoint.slug}_rejects_a_body_that_is_not_json(client: httpx.Client) -> None:
    response = client.request(
        "{endpoint.method}", "{path}", content=b"not json", headers={{"Content-Type": "application/json"}}
    )

    assert 400 <= response.status_code < 500
"""


def tests_module(prompt: str) -> str:
    limit_match = MAX_TESTS.search(prompt)
    limit = max(1, int(limit_match.group(1))) if limit_match else 2
    endpoints = _endpoints(prompt)
    title = re.search(r'HTTP API "([^"\n]*)"', prompt)
    name = (title.group(1) if title else "the API").replace('"""', "'''")
    tests = [test for endpoint in endpoints for test in _tests_for(endpoint, limit)]
    if not tests:  # a prompt naming no endpoint still gets a module that says what it checks
        tests = [
            """def test_root_answers(client: httpx.Client) -> None:
    response = client.get("/")

    assert response.status_code < 500
"""
        ]
    header = f'''"""Tests for {name}: status codes of every endpoint and its error cases."""

from collections.abc import Iterator

import httpx
import pytest

BASE_URL = "{DEFAULT_BASE_URL}"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE_URL, timeout=10) as http:
        yield http
'''
    return header + "\n\n" + "\n\n".join(tests)
