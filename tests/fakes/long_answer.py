"""Long answers from the cloud emulators, for measuring how a page keeps up with a long stream.

A prompt that is exactly ``answer with N words`` (any case, N from 1 to ``MAX_WORDS``) gets N words of
plain prose back instead of the echo, in paragraphs of ``PARAGRAPH`` words, one streamed piece per word.
Deterministic, so a benchmark can check that the page shows every word.
"""

from __future__ import annotations

import re

MAX_WORDS = 200_000
PARAGRAPH = 80
REQUEST = re.compile(r"\s*answer with (\d{1,6}) words\s*", re.I)
_VOCABULARY = (
    "the quick brown fox jumps over a lazy dog while seven curious otters watch from the river bank "
    "and count every stone that rolls past their small wooden boat"
).split()


def long_answer(prompt: str) -> str | None:
    """N words of prose for ``answer with N words``; None for any other prompt."""
    match = REQUEST.fullmatch(prompt)
    if match is None or not 1 <= int(match.group(1)) <= MAX_WORDS:
        return None
    count = int(match.group(1))
    words = [_VOCABULARY[i % len(_VOCABULARY)] for i in range(count)]
    paragraphs = [" ".join(words[i : i + PARAGRAPH]) for i in range(0, count, PARAGRAPH)]
    return "\n\n".join(paragraphs)
