"""Facts about a whole module gathered before the rules run: what each name is bound to."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from codegen.screening.policy import TYPE_FACTORY_NAMES
from codegen.screening.scoring import Finding


def last_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def attr_chain(node: ast.AST) -> list[str] | None:
    """["mocker", "patch", "object"] for mocker.patch.object."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def is_str_constant(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


# --------------------------------------------------------------------------------------------------
# Facts about the whole module, gathered before the rules run
# --------------------------------------------------------------------------------------------------


@dataclass
class ModuleFacts:
    # name -> dotted path of the module (or module member) an import bound it to
    aliases: dict[str, str] = field(default_factory=dict)
    # name -> every (kind, value) binding anywhere in the code; kinds: import class def typedef
    # typealias param other. Used for "is this name a type?" and "is this a literal template?".
    bindings: dict[str, list[tuple[str, ast.expr | None]]] = field(default_factory=dict)
    # classes whose bases are subscripted (Generic[T], BaseModel[...]): their subscripts are types
    generic_classes: set[str] = field(default_factory=set)
    # functions registered with pytest.fixture(func) rather than as a decorator
    fixture_functions: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)

    def bind(self, name: str, kind: str, value: ast.expr | None = None) -> None:
        self.bindings.setdefault(name, []).append((kind, value))


def value_kind(value: ast.expr) -> str:
    if isinstance(value, ast.Call):
        return "typedef" if last_name(value.func) in TYPE_FACTORY_NAMES else "other"
    if isinstance(value, (ast.Name, ast.Attribute, ast.Subscript)):
        return "typealias"
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitOr):
        return "typealias"
    if isinstance(value, ast.Constant) and (value.value is None or isinstance(value.value, str)):
        return "typealias"
    return "other"


def bind_target(facts: ModuleFacts, target: ast.expr, value: ast.expr | None) -> None:
    if isinstance(target, ast.Name):
        if value is None:
            facts.bind(target.id, "other")
        else:
            kind = value_kind(value)
            facts.bind(target.id, kind, value if kind == "typealias" else None)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            bind_target(facts, element, None)
    elif isinstance(target, ast.Starred):
        bind_target(facts, target.value, None)


def collect_facts(tree: ast.Module) -> ModuleFacts:
    facts = ModuleFacts()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.partition(".")[0]
                bound = alias.asname or top
                facts.aliases[bound] = alias.name if alias.asname else top
                facts.bind(bound, "import")
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    continue
                bound = alias.asname or alias.name
                if node.level == 0 and node.module:
                    facts.aliases[bound] = f"{node.module}.{alias.name}"
                facts.bind(bound, "import")
        elif isinstance(node, ast.ClassDef):
            facts.bind(node.name, "class")
            if any(isinstance(base, ast.Subscript) for base in node.bases):
                facts.generic_classes.add(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            facts.bind(node.name, "def")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                bind_target(facts, target, node.value)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None and isinstance(node.target, ast.Name):
                if last_name(node.annotation) == "TypeAlias":
                    facts.bind(node.target.id, "typealias", node.value)
                else:
                    bind_target(facts, node.target, node.value)
        elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor, ast.comprehension)):
            bind_target(facts, node.target, None)
        elif isinstance(node, ast.NamedExpr):
            facts.bind(node.target.id, "other")
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            bind_target(facts, node.optional_vars, None)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            facts.bind(node.name, "other")
        elif isinstance(node, ast.arg):
            facts.bind(node.arg, "param")
        elif isinstance(node, ast.Call) and last_name(node.func) == "fixture":
            facts.fixture_functions.update(arg.id for arg in node.args if isinstance(arg, ast.Name))
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            facts.bind(node.name, "other")
        elif isinstance(node, ast.MatchMapping) and node.rest:
            facts.bind(node.rest, "other")
    return facts
