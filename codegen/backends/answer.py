"""The files in a model's answer: each a line `### <relative path>` followed by a fenced block holding the
file's whole content. Only paths inside the project count, and only so many files and bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

MAX_FILES = 60
MAX_TOTAL_BYTES = 200_000
FILE_BLOCK = re.compile(r"^###[ \t]+`?([^\s`]+)`?[ \t]*\n+```[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
SAFE_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")


@dataclass
class AnswerFiles:
    files: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # why a block was not taken, one line each


def path_problem(path: str) -> str | None:
    """Why a path may not be written; None if it is a plain relative path inside the project."""
    if path.startswith("/") or "\\" in path:
        return "absolute or Windows path"
    parts = PurePosixPath(path).parts
    if ".." in parts or path.startswith("./") or not SAFE_PATH.match(path):
        return "not a plain relative path inside the project"
    return None


def files_from_answer(answer: str) -> AnswerFiles:
    result = AnswerFiles()
    total = 0
    for match in FILE_BLOCK.finditer(answer):
        path, content = match.group(1).strip(), match.group(2)
        problem = path_problem(path)
        if problem:
            result.refused.append(f"{path}: {problem}")
            continue
        if path not in result.files and len(result.files) >= MAX_FILES:
            result.refused.append(f"{path}: more than {MAX_FILES} files")
            continue
        size = len(content.encode("utf-8"))
        if total + size > MAX_TOTAL_BYTES:
            result.refused.append(f"{path}: the files would exceed {MAX_TOTAL_BYTES} bytes in all")
            continue
        total += size
        result.files[path] = content
    return result
