"""Strings that some library will evaluate: folding literal concatenations, str.format fields and
doctest examples, so that the rules can screen them as the code they become."""

from __future__ import annotations

import ast
import re
import string
import unicodedata

from codegen.screening.modules import attr_problem, is_dunder
from codegen.screening.policy import FIELD_PART, STRING_DUNDER_NAMES

# Strings inside strings inside strings are already absurd for real code; deeper nesting is refused.
MAX_STRING_DEPTH = 3
# Folding "a" * 10**9 at screening time would be a denial of service against the screener itself.
MAX_FOLDED_CHARS = 20_000


def fold_str(node: ast.AST) -> str | None:
    """The value of a string expression built only from literals ("__imp" + "ort__", chr(95) ...)."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Add):
            left, right = fold_str(node.left), fold_str(node.right)
            if left is not None and right is not None and len(left) + len(right) <= MAX_FOLDED_CHARS:
                return left + right
        if isinstance(node.op, ast.Mult):
            for text_node, count_node in ((node.left, node.right), (node.right, node.left)):
                text = fold_str(text_node)
                if (
                    text is not None
                    and isinstance(count_node, ast.Constant)
                    and type(count_node.value) is int
                    and 0 <= count_node.value
                    and len(text) * count_node.value <= MAX_FOLDED_CHARS
                ):
                    return text * count_node.value
        return None
    if isinstance(node, ast.JoinedStr):
        parts: list[str] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                if value.conversion != -1 or value.format_spec is not None:
                    return None
                inner = fold_str(value.value)
            else:
                inner = fold_str(value)
            if inner is None:
                return None
            parts.append(inner)
        return "".join(parts)
    if isinstance(node, ast.Call) and not node.keywords:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "chr" and len(node.args) == 1:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and type(arg.value) is int and 0 <= arg.value < 0x110000:
                return chr(arg.value)
        if isinstance(func, ast.Name) and func.id == "str" and len(node.args) == 1:
            return fold_str(node.args[0])
        if isinstance(func, ast.Attribute) and func.attr == "join" and len(node.args) == 1:
            separator = fold_str(func.value)
            items = node.args[0]
            if separator is not None and isinstance(items, (ast.List, ast.Tuple)):
                pieces = [fold_str(item) for item in items.elts]
                if all(piece is not None for piece in pieces):
                    joined = separator.join(piece for piece in pieces if piece is not None)
                    return joined if len(joined) <= MAX_FOLDED_CHARS else None
    return None


def format_field_problems(template: str, depth: int = 0) -> list[str]:
    """Attribute and index steps of str.format fields ("{0.__class__}", "{x[__builtins__]}") that
    str.format would resolve with getattr at run time."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return []
    problems: list[str] = []
    for _, field_name, format_spec, _ in parsed:
        if field_name:
            head = re.match(r"[^.\[]*", field_name)
            rest = field_name[head.end() if head else 0 :]
            for match in FIELD_PART.finditer(rest):
                if match.group(0).startswith("."):
                    problem = attr_problem(match.group(1), self_base=False)
                    if problem:
                        problems.append(f"format field {{{field_name}}}: {problem[1]}")
                else:
                    key = match.group(2).strip()
                    if is_dunder(unicodedata.normalize("NFKC", key)) and key not in STRING_DUNDER_NAMES:
                        problems.append(f"format field {{{field_name}}} looks up the dunder key {key!r}")
        if format_spec and "{" in format_spec and depth < 2:
            problems.extend(format_field_problems(format_spec, depth + 1))
    return problems


def needs_strict(tree: ast.AST) -> bool:
    strict = (ast.Call, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr)
    strict += (ast.Await, ast.Yield, ast.YieldFrom)
    return any(isinstance(node, strict) for node in ast.walk(tree))


def doctest_examples(text: str) -> list[str]:
    """The source of each `>>>` example, which pytest --doctest-modules would execute."""
    examples: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(">>>"):
            if current:
                examples.append("\n".join(current))
            current = [stripped[3:].removeprefix(" ")]
        elif stripped.startswith("...") and current is not None:
            current.append(stripped[3:].removeprefix(" "))
        elif current:
            examples.append("\n".join(current))
            current = None
    if current:
        examples.append("\n".join(current))
    return examples
