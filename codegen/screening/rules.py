"""The AST rules: one walk over the tree (and over code found inside its strings) that reports every
use the policy does not allow."""

from __future__ import annotations

import ast
import builtins
import symtable
from collections.abc import Mapping

from codegen.screening.facts import ModuleFacts, attr_chain, is_str_constant, last_name
from codegen.screening.modules import attr_problem, child_path, is_dunder, is_own_submodule, member_problem
from codegen.screening.policy import (
    ALIAS_GENERATORS,
    ALIAS_KEYWORDS,
    ALLOWED_BUILTINS,
    ALLOWED_DUNDER_KEYWORDS,
    ALLOWED_DUNDER_NAMES,
    ALLOWED_MODULES,
    ASSIGNABLE_DUNDER_ATTRS,
    BLOCKED_KEYWORDS,
    BLOCKED_MODULE_NAMES,
    BUILTIN_GENERICS,
    CONSTRUCTOR_DUNDERS,
    DANGEROUS_FIXTURES,
    DUNDER_DEFINITIONS,
    FORBIDDEN_BUILTINS,
    NOT_ALLOWED_STDLIB,
    REQUEST_ATTRS,
    SELF_NAMES,
    SINK_QUALNAMES,
    STRING_DUNDER_NAMES,
    STRING_NAME_DUNDERS,
    ModulePolicy,
)
from codegen.screening.scoring import Finding
from codegen.screening.strings import (
    MAX_STRING_DEPTH,
    doctest_examples,
    fold_str,
    format_field_problems,
    needs_strict,
)

_SCOPE_KEYS: dict[type[ast.AST], str] = {
    ast.ListComp: "listcomp",
    ast.SetComp: "setcomp",
    ast.DictComp: "dictcomp",
    ast.GeneratorExp: "genexpr",
}


class Screen(ast.NodeVisitor):
    """Walks one tree (the module, or code found inside one of its strings) and records findings.

    Scoping comes from `symtable`, the compiler's own analysis, so "is this `input` the builtin or a
    parameter?" is answered the way Python will answer it, not by guessing.
    """

    def __init__(
        self,
        facts: ModuleFacts,
        tree: ast.AST,
        table: symtable.SymbolTable | None,
        *,
        origin: str = "",
        line: int | None = None,
        depth: int = 0,
        modules: Mapping[str, ModulePolicy] = ALLOWED_MODULES,
    ) -> None:
        self.facts = facts
        self.modules = modules
        self.origin = origin
        self.fixed_line = line
        self.depth = depth
        self.tables: list[symtable.SymbolTable | None] = [table]
        self.scopes: list[str] = ["module"]
        self.parents: dict[int, ast.AST] = {}
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[id(child)] = parent
        self._child_queues: dict[int, dict[tuple[str, int], list[symtable.SymbolTable]]] = {}

    # ---- reporting and scopes --------------------------------------------------------------------

    def report(self, rule: str, message: str, node: ast.AST | None) -> None:
        line = self.fixed_line if self.fixed_line is not None else getattr(node, "lineno", None)
        if self.origin:
            message = f"{message} (inside {self.origin})"
        self.facts.findings.append(Finding(rule, message, line, True))

    def _enter(self, key: tuple[str, int], kind: str) -> None:
        current = self.tables[-1]
        child: symtable.SymbolTable | None = None
        if current is not None:
            queues = self._child_queues.get(current.get_id())
            if queues is None:
                queues = {}
                for table in current.get_children():
                    queues.setdefault((table.get_name(), table.get_lineno()), []).append(table)
                self._child_queues[current.get_id()] = queues
            bucket = queues.get(key)
            # A scope we cannot match is analysed as "unknown", which every rule treats as global:
            # the mismatch can only make the screen stricter.
            child = bucket.pop(0) if bucket else None
        self.tables.append(child)
        self.scopes.append(kind)

    def _leave(self) -> None:
        self.tables.pop()
        self.scopes.pop()

    def _is_local(self, name: str) -> bool:
        """True when `name` here is a function local or closure variable. Those never fall back to
        builtins; module and class names do (after `del eval` or an untaken `if`), so they don't count."""
        table = self.tables[-1]
        if table is None or table.get_type() != "function":
            return False
        try:
            symbol = table.lookup(name)
        except KeyError:
            return False
        return symbol.is_local() or symbol.is_free()

    def _local_is_import(self, name: str) -> bool:
        table = self.tables[-1]
        try:
            return table is not None and table.lookup(name).is_imported()
        except KeyError:
            return False

    def _is_called(self, node: ast.AST) -> bool:
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Call) and parent.func is node:
            return True
        return isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and any(
            decorator is node for decorator in parent.decorator_list
        )

    def _module_path(self, node: ast.AST) -> str | None:
        """The dotted import path an expression denotes (`t.List` -> "typing.List"), if any."""
        if isinstance(node, ast.Name):
            if self._is_local(node.id) and not self._local_is_import(node.id):
                return None
            path = self.facts.aliases.get(node.id)
            if path is None or path.partition(".")[0] not in self.modules:
                return None
            return path
        if isinstance(node, ast.Attribute):
            base = self._module_path(node.value)
            return None if base is None else child_path(base, node.attr, self.modules)
        return None

    @staticmethod
    def _is_self_base(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in SELF_NAMES
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"

    def _is_builtin_name(self, node: ast.AST, name: str) -> bool:
        return (
            isinstance(node, ast.Name)
            and node.id == name
            and not self._is_local(name)
            and name not in self.facts.bindings
        )

    # ---- imports ---------------------------------------------------------------------------------

    def _import_member_problem(self, path: str, member: str) -> str | None:
        problem = attr_problem(member, self_base=False)
        # fastapi.requests is FastAPI's own module, not the requests library the name rule is about.
        if problem and not (problem[0] == "attribute-not-allowed" and is_own_submodule(path, member)):
            return problem[1]
        return member_problem(path, member, self.modules)

    def _check_import_path(self, dotted: str, node: ast.AST) -> str | None:
        parts = dotted.split(".")
        top = parts[0]
        if top not in self.modules:
            self.report("import-not-allowed", f"import of {dotted!r}: module {top!r} is not on the allowlist", node)
            return None
        path = top
        for part in parts[1:]:
            problem = self._import_member_problem(path, part)
            if problem:
                self.report("import-not-allowed", f"import of {dotted!r}: {problem}", node)
                return None
            path = child_path(path, part, self.modules)
        return path

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "__future__":
                self.report("import-not-allowed", "import of the __future__ module itself", node)
                continue
            self._check_import_path(alias.name, node)
            if alias.asname and is_dunder(alias.asname):
                self.report("dunder-name", f"import bound to the dunder name {alias.asname!r}", node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.report("import-not-allowed", "relative import: the code may only import allowlisted modules", node)
            return
        module = node.module or ""
        path = self._check_import_path(module, node)
        for alias in node.names:
            if alias.name == "*":
                self.report("star-import", f"'from {module} import *' hides which names the code uses", node)
                continue
            if alias.asname and is_dunder(alias.asname):
                self.report("dunder-name", f"import bound to the dunder name {alias.asname!r}", node)
            if path is None:
                continue
            problem = self._import_member_problem(path, alias.name)
            if problem:
                self.report("import-not-allowed", f"from {module} import {alias.name}: {problem}", node)

    # ---- definitions and scopes ------------------------------------------------------------------

    def _check_definition_name(self, name: str, node: ast.AST) -> None:
        if is_dunder(name) and name not in DUNDER_DEFINITIONS:
            self.report("dunder-definition", f"defining {name!r} is not allowed", node)
        elif name.startswith("pytest_"):
            self.report(
                "definition-not-allowed",
                f"{name!r} would be picked up as a pytest hook, which receives pytest's config and plugins",
                node,
            )

    def _check_argument_names(self, args: ast.arguments) -> None:
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and is_dunder(arg.arg):
                self.report("dunder-name", f"parameter named {arg.arg!r}", arg)
        # pytest injects fixtures by parameter name into anything it registers, and registration can be
        # hidden (an aliased decorator, pytest.fixture(func)); these names mean nothing else, so they are
        # refused on every function. `cache` and `request` are ordinary words: see _check_fixture_parameters.
        self._check_fixture_parameters(args, strict=False)

    def _check_fixture_parameters(self, args: ast.arguments, *, strict: bool) -> None:
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            generic_word = arg.arg in {"cache", "request"}
            if (arg.arg in DANGEROUS_FIXTURES and not generic_word) or (strict and generic_word):
                self.report(
                    "fixture-not-allowed",
                    f"the pytest fixture {arg.arg!r} reaches the file system, environment or pytest internals",
                    arg,
                )

    def _visit_outer_arguments(self, args: ast.arguments) -> None:
        """Defaults and annotations are evaluated in the enclosing scope."""
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                self._check_type_expr(arg.annotation, "annotation")
                self.visit(arg.annotation)

    def _check_pytest_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        decorated_fixture = any(
            last_name(d.func if isinstance(d, ast.Call) else d) == "fixture"
            or self._module_path(d.func if isinstance(d, ast.Call) else d) == "pytest.fixture"
            for d in node.decorator_list
        )
        if not (decorated_fixture or node.name.startswith("test") or node.name in self.facts.fixture_functions):
            return
        args = node.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        for arg in params:
            if arg.arg == "cache":
                self.report("fixture-not-allowed", "the pytest fixture 'cache' writes to the file system", arg)
        if any(arg.arg == "request" for arg in params):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name) and inner.id == "request":
                    parent = self.parents.get(id(inner))
                    if not (isinstance(parent, ast.Attribute) and parent.attr in REQUEST_ATTRS):
                        shown = f"request.{parent.attr}" if isinstance(parent, ast.Attribute) else "request"
                        self.report(
                            "fixture-not-allowed",
                            f"{shown}: only request.param and similar may be used (config/node lead out)",
                            inner,
                        )

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._check_definition_name(node.name, node)
        self._visit_decorators(node.decorator_list)
        self._visit_outer_arguments(node.args)
        if node.returns is not None:
            self._check_type_expr(node.returns, "return annotation")
            self.visit(node.returns)
        self._check_pytest_function(node)
        self._check_argument_names(node.args)
        self._enter((node.name, node.lineno), "function")
        for statement in node.body:
            self.visit(statement)
        self._leave()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_function(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_outer_arguments(node.args)
        self._check_argument_names(node.args)
        self._enter(("lambda", node.lineno), "function")
        self.visit(node.body)
        self._leave()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if is_dunder(node.name):
            self.report("dunder-definition", f"class named {node.name!r}", node)
        self._visit_decorators(node.decorator_list)
        for base in node.bases:
            self.visit(base)
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self._check_metaclass(keyword.value)
            self.visit(keyword.value)
        self._enter((node.name, node.lineno), "class")
        for statement in node.body:
            self.visit(statement)
        self._leave()

    def _check_metaclass(self, value: ast.expr) -> None:
        # A metaclass is called with (name, bases, namespace): a lambda or arbitrary callable there is a
        # call site that does not look like one.
        if isinstance(value, ast.Name):
            if self._is_builtin_name(value, value.id) and value.id in vars(builtins) and value.id != "type":
                self.report("metaclass-not-allowed", f"metaclass={value.id}: only classes may be metaclasses", value)
        elif not isinstance(value, ast.Attribute):
            self.report("metaclass-not-allowed", "metaclass must be a class named in the code or imported", value)

    def _visit_comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp) -> None:
        first, *rest = node.generators
        self.visit(first.iter)  # evaluated in the enclosing scope
        self._enter((_SCOPE_KEYS[type(node)], node.lineno), "function")
        self.visit(first.target)
        for condition in first.ifs:
            self.visit(condition)
        for generator in rest:
            self.visit(generator)
        if isinstance(node, ast.DictComp):
            self.visit(node.key)
            self.visit(node.value)
        else:
            self.visit(node.elt)
        self._leave()

    visit_ListComp = _visit_comprehension
    visit_SetComp = _visit_comprehension
    visit_DictComp = _visit_comprehension
    visit_GeneratorExp = _visit_comprehension

    # ---- names -----------------------------------------------------------------------------------

    def _dunder_name_ok(self, name: str) -> bool:
        if self.origin:
            return name in STRING_DUNDER_NAMES
        if name in ALLOWED_DUNDER_NAMES:
            return True
        # Class bodies may bind and reuse protocol names: `__hash__ = None`, `__radd__ = __add__`.
        return self.scopes[-1] == "class" and name in DUNDER_DEFINITIONS

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if is_dunder(name):
            if not self._dunder_name_ok(name):
                self.report("dunder-name", f"use of the name {name!r} is not allowed", node)
            return
        if not isinstance(node.ctx, ast.Load):
            if name.startswith("pytest_"):
                # pytest_plugins loads plugin modules by name; pytest_<hook> = ... registers a hook.
                self.report("definition-not-allowed", f"binding {name!r} configures pytest itself", node)
            return
        self._check_sink_reference(node, self._module_path(node))
        if self._is_local(name):
            return
        if name in FORBIDDEN_BUILTINS:
            if self._is_called(node):
                self.report("call-not-allowed", f"call to {name}() is not allowed", node)
            else:
                self.report(
                    "name-not-allowed",
                    f"the builtin {name!r} may not be referenced (an alias would be called unseen)",
                    node,
                )
        elif self.origin and name in NOT_ALLOWED_STDLIB | BLOCKED_MODULE_NAMES and name not in self.facts.bindings:
            # pytest evaluates skipif strings with os/sys/platform in scope, and other evaluators may too.
            self.report("name-not-allowed", f"reference to the module name {name!r}", node)

    def visit_Global(self, node: ast.Global) -> None:
        self._check_declared_names(node.names, node)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self._check_declared_names(node.names, node)

    def _check_declared_names(self, names: list[str], node: ast.AST) -> None:
        for name in names:
            if is_dunder(name) and name not in ALLOWED_DUNDER_NAMES:
                self.report("dunder-name", f"declaration of the name {name!r}", node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name and is_dunder(node.name):
            self.report("dunder-name", f"exception bound to {node.name!r}", node)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name and is_dunder(node.name):
            self.report("dunder-name", f"pattern capture named {node.name!r}", node)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name and is_dunder(node.name):
            self.report("dunder-name", f"pattern capture named {node.name!r}", node)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest and is_dunder(node.rest):
            self.report("dunder-name", f"pattern capture named {node.rest!r}", node)
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        # `case object(__class__=c)` is getattr(subject, "__class__") spelled as a pattern.
        for attr in node.kwd_attrs:
            problem = attr_problem(attr, self_base=False)
            if problem:
                self.report(problem[0], f"class pattern keyword: {problem[1]}", node)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_match_args(target, node.value)
        self.generic_visit(node)

    def _check_match_args(self, target: ast.expr, value: ast.expr | None) -> None:
        """`case Proxy(x)` does getattr(subject, name) for each name in __match_args__."""
        if not (isinstance(target, ast.Name) and target.id == "__match_args__") or value is None:
            return
        literal = isinstance(value, (ast.Tuple, ast.List)) and all(is_str_constant(e) for e in value.elts)
        if not literal:
            self.report("string-attribute", "__match_args__ must be a tuple of string literals", target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_match_args(node.target, node.value)
        # Annotations of function locals are never evaluated; module and class ones are (and pydantic,
        # dataclasses and typing.get_type_hints read them).
        if self.scopes[-1] != "function":
            self._check_type_expr(node.annotation, "annotation")
        self.generic_visit(node)

    # ---- attributes ------------------------------------------------------------------------------

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        parent = self.parents.get(id(node))
        called_here = isinstance(parent, ast.Call) and parent.func is node
        # object.__setattr__(self, "x", v) and friends are judged with their argument in visit_Call.
        path = self._module_path(node.value)
        reported = False
        if not (attr in STRING_NAME_DUNDERS and called_here):
            problem = attr_problem(attr, self_base=self._is_self_base(node.value))
            # pytest.mark.<name> names a marker (pytest.mark.anyio), it looks nothing up; fastapi.requests
            # is FastAPI's own module, not the requests library.
            if problem and not (
                problem[0] == "attribute-not-allowed"
                and path is not None
                and (path == "pytest.mark" or is_own_submodule(path, attr))
            ):
                self.report(*problem, node)
                reported = True
        if isinstance(node.ctx, ast.Load):
            chain = attr_chain(node)
            if chain and chain[0] == "mocker" and len(chain) > 1 and chain[1] in {"patch", "spy"}:
                self._check_sink_reference(node, "mocker." + ".".join(chain[1:]))
            else:
                self._check_sink_reference(node, self._module_path(node))
        if (
            not reported
            and is_dunder(attr)
            and isinstance(node.ctx, (ast.Store, ast.Del))
            and attr not in ASSIGNABLE_DUNDER_ATTRS
        ):
            self.report("dunder-attribute", f"assigning the dunder attribute {attr!r} is not allowed", node)
            reported = True
        if attr in CONSTRUCTOR_DUNDERS and not reported:
            self._check_constructor_dunder(node, parent if called_here else None)
        if path is not None:
            problem_text = None if reported else member_problem(path, attr, self.modules)
            if problem_text:
                self.report("attribute-not-allowed", problem_text, node)
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                self.report(
                    "module-attribute-assignment",
                    f"assigning {path}.{attr} would change a shared library module for every caller",
                    node,
                )
        if attr in {"format", "format_map"}:
            self._check_format_receiver(node, parent if called_here else None)
        self.generic_visit(node)

    def _check_constructor_dunder(self, node: ast.Attribute, call: ast.AST | None) -> None:
        if self._is_self_base(node.value):
            return  # super().__init__(...), self.__post_init__(), cls.__new__(cls)
        if (
            node.attr in {"__init__", "__new__"}
            and isinstance(call, ast.Call)
            and call.args
            and isinstance(call.args[0], ast.Name)
            and call.args[0].id in SELF_NAMES
        ):
            return  # Base.__init__(self, ...), object.__new__(cls)
        self.report(
            "dunder-attribute",
            f"{node.attr} may only be used on super(), self or cls: re-running another object's constructor"
            " would feed it arguments the call checks never saw",
            node,
        )

    def _check_sink_reference(self, node: ast.expr, path: str | None) -> None:
        if path is None or not (path in SINK_QUALNAMES or path.startswith("mocker.")):
            return
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Call) and parent.func is node:
            return
        if isinstance(parent, ast.Attribute) and parent.value is node and not is_dunder(parent.attr):
            return  # patch.object, patch.stopall: a further lookup, not an alias
        if isinstance(parent, ast.ClassDef) and any(base is node for base in parent.bases):
            return  # class Point(NamedTuple): the class syntax, whose annotations are checked
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
            decorator is node for decorator in parent.decorator_list
        ):
            return  # @pytest.fixture
        shown = path.removeprefix("unittest.mock.")
        self.report(
            "call-not-allowed",
            f"{shown} may only be called directly: through an alias its arguments would escape the checks",
            node,
        )

    def _is_literal_template(self, node: ast.AST) -> bool:
        if is_str_constant(node):
            return True
        if isinstance(node, ast.Name):
            bindings = self.facts.bindings.get(node.id, [])
            return bool(bindings) and all(kind == "typealias" and is_str_constant(value) for kind, value in bindings)
        return False

    def _check_format_receiver(self, node: ast.Attribute, call: ast.AST | None) -> None:
        """Literal templates are checked field by field in visit_Constant; a template that is not a
        literal could contain "{0.__globals__}" and is refused."""
        receiver = node.value
        if self._is_literal_template(receiver):
            return
        if self._is_builtin_name(receiver, "str") and isinstance(call, ast.Call) and call.args:
            if self._is_literal_template(call.args[0]):
                return
        self.report(
            "format-string",
            f".{node.attr}() on a template that is not a string literal: its fields could reach any attribute",
            node,
        )

    # ---- calls -----------------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            self._check_name_call(func, node)
        qualname = self._module_path(func)
        if qualname is not None:
            self._check_qualified_call(qualname, node)
        chain = attr_chain(func)
        if chain and chain[0] == "mocker" and len(chain) > 1:
            # pytest-mock's fixture wraps unittest.mock.patch and adds spy(obj, "name").
            if chain[1] == "spy":
                self._check_string_attribute(node.args[1] if len(node.args) > 1 else None, node, "mocker.spy")
            else:
                self._check_qualified_call("unittest.mock." + ".".join(chain[1:]), node)
        if isinstance(func, ast.Attribute) and func.attr in STRING_NAME_DUNDERS:
            self._check_string_name_dunder(func, node)
        if isinstance(func, ast.Attribute) and func.attr == "__getitem__" and self._is_generic_base(func.value):
            for arg in node.args[:1]:
                self._check_type_expr(arg, "generic type argument")
        if last_name(func) == "fixture" or qualname == "pytest.fixture":
            # pytest.fixture(lambda request: ...) registers the lambda as a fixture.
            for arg in node.args:
                if isinstance(arg, ast.Lambda):
                    self._check_fixture_parameters(arg.args, strict=True)
        if chain and len(chain) >= 2 and chain[-2:] in (["mark", "skipif"], ["mark", "xfail"]):
            condition = (
                node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "condition"), None)
            )
            if condition is not None and fold_str(condition) is not None:
                self.report(
                    "call-not-allowed",
                    f"{chain[-1]} with a string condition: pytest evaluates it as code with os and sys in scope",
                    node,
                )
        self._check_keywords(node)
        for keyword in node.keywords:
            if keyword.arg == "response_model":
                self._check_type_expr(keyword.value, "response_model")
        self._maybe_screen_folded(node)
        self.generic_visit(node)

    def _check_name_call(self, func: ast.Name, node: ast.AST) -> None:
        """A bare name being called (or applied as a decorator)."""
        name = func.id
        if self._is_local(name) or name in FORBIDDEN_BUILTINS or is_dunder(name) or name in self.facts.bindings:
            return  # reported by visit_Name, or a name this code defines itself
        if name not in ALLOWED_BUILTINS:
            self.report(
                "call-not-allowed",
                f"call to {name}(), which is neither an allowed builtin nor defined or imported here",
                node,
            )
        elif isinstance(node, ast.Call):
            self._check_builtin_call(name, node)

    def _visit_decorators(self, decorators: list[ast.expr]) -> None:
        for decorator in decorators:
            if isinstance(decorator, ast.Name):
                self._check_name_call(decorator, decorator)
            self.visit(decorator)

    def _check_builtin_call(self, name: str, node: ast.Call) -> None:
        if name == "type" and (len(node.args) != 1 or node.keywords):
            self.report("call-not-allowed", "type() with other than one argument builds classes dynamically", node)
        elif name == "hasattr":
            self._check_string_attribute(node.args[1] if len(node.args) > 1 else None, node, "hasattr")

    def _is_literal_alias(self, value: ast.AST) -> bool:
        if is_str_constant(value) or (isinstance(value, ast.Constant) and value.value is None):
            return True
        if isinstance(value, ast.Call) and last_name(value.func) in {"AliasPath", "AliasChoices"}:
            return not value.keywords and all(
                (isinstance(a, ast.Constant) and isinstance(a.value, (str, int))) or self._is_literal_alias(a)
                for a in value.args
            )
        return False

    def _is_known_alias_generator(self, value: ast.AST) -> bool:
        if last_name(value) in ALIAS_GENERATORS and isinstance(value, (ast.Name, ast.Attribute)):
            return True
        if isinstance(value, ast.Call) and last_name(value.func) == "AliasGenerator":
            return all(self._is_known_alias_generator(a) for a in [*value.args, *(k.value for k in value.keywords)])
        return False

    def _check_string_attribute(
        self, arg: ast.AST | None, node: ast.AST, what: str, *, self_base: bool = False, dotted: bool = False
    ) -> None:
        """An attribute named by a string argument: it must be a literal, and a harmless one."""
        if not isinstance(arg, ast.Constant) or not isinstance(arg.value, str):
            self.report("string-attribute", f"{what} needs a literal attribute name, not a computed one", node)
            return
        for part in arg.value.split(".") if dotted else [arg.value]:
            problem = attr_problem(part, self_base=self_base)
            if problem:
                self.report("string-attribute", f"{what}({arg.value!r}): {problem[1]}", node)

    def _check_string_name_dunder(self, func: ast.Attribute, node: ast.Call) -> None:
        receiver = func.value
        if self._is_self_base(receiver):
            index, self_base = 0, True
        elif self._is_builtin_name(receiver, "object") or self._is_builtin_name(receiver, "type"):
            index = 1
            self_base = bool(node.args) and self._is_self_base(node.args[0])
        else:
            self.report(
                "string-attribute",
                f".{func.attr}() is only allowed on object, type, super() or self, with a literal name",
                node,
            )
            return
        arg = node.args[index] if len(node.args) > index else None
        self._check_string_attribute(arg, node, func.attr, self_base=self_base)

    def _check_import_target(self, arg: ast.AST | None, node: ast.AST, what: str) -> None:
        """mock.patch("a.b.c") imports `a.b` by name: the target obeys the import allowlist."""
        if not isinstance(arg, ast.Constant) or not isinstance(arg.value, str):
            self.report("string-attribute", f"{what} needs a literal target", node)
            return
        dotted = arg.value
        parts = dotted.split(".")
        if parts[0] not in self.modules:
            self.report("import-not-allowed", f"{what}({dotted!r}) imports {parts[0]!r}, which is not allowed", node)
            return
        path = parts[0]
        for part in parts[1:]:
            problem = self._import_member_problem(path, part)
            if problem:
                self.report("import-not-allowed", f"{what}({dotted!r}): {problem}", node)
                return
            path = child_path(path, part, self.modules)

    def _check_qualified_call(self, qualname: str, node: ast.Call) -> None:
        args, keywords = node.args, {k.arg: k.value for k in node.keywords if k.arg}
        if qualname == "operator.attrgetter":
            for arg in args:
                self._check_string_attribute(arg, node, "attrgetter", dotted=True)
        elif qualname == "operator.methodcaller":
            self._check_string_attribute(args[0] if args else None, node, "methodcaller")
        elif qualname == "unittest.mock.patch":
            self._check_import_target(args[0] if args else keywords.get("target"), node, "patch")
        elif qualname == "unittest.mock.patch.object":
            self._check_string_attribute(args[1] if len(args) > 1 else keywords.get("attribute"), node, "patch.object")
        elif qualname in {"unittest.mock.patch.dict", "unittest.mock.patch.multiple"}:
            target = args[0] if args else keywords.get("in_dict") or keywords.get("target")
            if is_str_constant(target):
                self._check_import_target(target, node, "patch." + qualname.rpartition(".")[2])
            if qualname.endswith("multiple"):
                for keyword in node.keywords:
                    if keyword.arg:
                        problem = attr_problem(keyword.arg, self_base=False)
                        if problem:
                            self.report("string-attribute", f"patch.multiple: {problem[1]}", node)
        elif qualname == "unittest.main":
            harmless = {"verbosity", "exit", "buffer", "failfast", "catchbreak", "warnings", "tb_locals"}
            if args or any(k.arg not in harmless for k in node.keywords):
                self.report(
                    "call-not-allowed",
                    "unittest.main() with module/argv/defaultTest/testLoader imports and runs names from strings",
                    node,
                )
        elif qualname in {"typing.get_type_hints", "typing_extensions.get_type_hints"}:
            if len(args) > 1:
                self.report("call-not-allowed", "get_type_hints with explicit namespaces evaluates strings", node)
        self._check_type_factory(qualname, node)

    def _check_type_factory(self, qualname: str, node: ast.Call) -> None:
        """Arguments that typing or pydantic will treat as types (and so eval() when they are strings)."""
        tail = qualname.rpartition(".")[2]
        module = qualname.partition(".")[0]
        if module not in {"typing", "typing_extensions", "pydantic", "dataclasses"}:
            return
        args, keywords = node.args, node.keywords
        type_nodes: list[ast.AST] = []
        if tail == "TypeVar":
            type_nodes += args[1:]
            type_nodes += [k.value for k in keywords if k.arg == "bound"]
        elif tail == "NewType":
            type_nodes += args[1:2]
        elif tail == "TypeAdapter":
            type_nodes += args[:1]
            type_nodes += [k.value for k in keywords if k.arg == "type"]
        elif tail == "create_model":
            for keyword in keywords:
                if keyword.arg and not is_dunder(keyword.arg):
                    value = keyword.value
                    type_nodes.append(value.elts[0] if isinstance(value, ast.Tuple) and value.elts else value)
        elif tail in {"NamedTuple", "make_dataclass"} and len(args) > 1:
            fields = args[1]
            if isinstance(fields, (ast.List, ast.Tuple)):
                for item in fields.elts:
                    if isinstance(item, ast.Tuple) and len(item.elts) > 1:
                        type_nodes.append(item.elts[1])
            else:
                type_nodes.append(fields)
        elif tail == "TypedDict" and len(args) > 1:
            fields = args[1]
            if isinstance(fields, ast.Dict):
                type_nodes += [v for v in fields.values if v is not None]
            else:
                type_nodes.append(fields)
        if tail in {"NamedTuple", "TypedDict"}:
            type_nodes += [k.value for k in keywords if k.arg and k.arg != "total"]
        for type_node in type_nodes:
            self._check_type_expr(type_node, f"{tail}() type argument")

    def _check_keywords(self, node: ast.Call) -> None:
        user_callable = isinstance(node.func, ast.Name) and any(
            kind in {"def", "class"} for kind, _ in self.facts.bindings.get(node.func.id, [])
        )
        for keyword in node.keywords:
            arg = keyword.arg
            if arg is None:
                continue
            if arg in ALIAS_KEYWORDS and not self._is_literal_alias(keyword.value):
                self.report(
                    "string-attribute",
                    f"{arg}= must be a string literal (or AliasPath/AliasChoices of them)",
                    keyword.value,
                )
            elif arg == "alias_generator" and not self._is_known_alias_generator(keyword.value):
                self.report(
                    "string-attribute",
                    "alias_generator must be one of pydantic's to_camel/to_pascal/to_snake",
                    keyword.value,
                )
            if arg in BLOCKED_KEYWORDS:
                self.report("keyword-not-allowed", f"keyword argument {arg}= is not allowed", keyword.value)
            elif is_dunder(arg):
                if arg not in ALLOWED_DUNDER_KEYWORDS:
                    self.report("keyword-not-allowed", f"dunder keyword argument {arg}=", keyword.value)
            elif arg.startswith("_") and not user_callable:
                # Private parameters of library internals (pydantic's _types_namespace ...).
                self.report("keyword-not-allowed", f"private keyword argument {arg}= of a library call", keyword.value)

    # ---- subscripts and type expressions ---------------------------------------------------------

    def _is_generic_base(self, base: ast.AST) -> bool:
        """Whether subscripting `base` builds a type (whose string arguments get eval()'d later) rather
        than indexing data."""
        qualname = self._module_path(base) or ""
        top = qualname.partition(".")[0]
        return (
            top in {"typing", "typing_extensions"}
            or qualname.startswith("collections.abc.")
            # imported classes: pydantic.RootModel[...], fastapi's Annotated helpers ...
            or (top in self.modules and qualname.rpartition(".")[2][:1].isupper())
            or (isinstance(base, ast.Name) and base.id in BUILTIN_GENERICS and self._is_builtin_name(base, base.id))
            or (isinstance(base, ast.Name) and base.id in self.facts.generic_classes)
        )

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self._is_generic_base(node.value):
            self._check_type_expr(node, "generic type argument")
        self.generic_visit(node)

    def _name_is_type(self, name: str, seen: frozenset[str]) -> bool:
        if name in seen:
            return True
        for kind, value in self.facts.bindings.get(name, []):
            if kind in {"import", "class", "def", "typedef"}:
                continue
            if kind == "typealias" and value is not None:
                if self._type_problems(value, seen | {name}, 0):
                    return False
                continue
            return False
        return True

    def _type_problems(self, node: ast.AST, seen: frozenset[str], depth: int) -> list[str]:
        """Why an expression is not a static type expression. Types must be names bound to classes,
        imports or type aliases: a name holding a run-time string would be eval()'d by typing/pydantic."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str) and depth < MAX_STRING_DEPTH:
                try:
                    parsed = ast.parse(node.value.strip(), mode="eval").body
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    return []
                return self._type_problems(parsed, seen, depth + 1)
            return []
        if isinstance(node, ast.Name):
            if self._name_is_type(node.id, seen):
                return []
            return [f"{node.id!r} is not bound to a class, import or type alias"]
        if isinstance(node, ast.Attribute):
            root: ast.AST = node
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name):
                return self._type_problems(root, seen, depth)
            return ["attribute of a computed value used as a type"]
        if isinstance(node, ast.Subscript):
            problems = self._type_problems(node.value, seen, depth)
            elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            kind = last_name(node.value)
            if kind == "Literal":
                for element in elements:
                    literal = (
                        isinstance(element, (ast.Constant, ast.Attribute))
                        or (isinstance(element, ast.UnaryOp) and isinstance(element.operand, ast.Constant))
                        or (isinstance(element, ast.Subscript) and last_name(element.value) == "Literal")
                    )
                    if not literal:
                        problems.append("Literal[...] accepts only literal values")
                return problems
            if kind == "Annotated":
                # Only the first argument is a type; the rest is metadata (Field(...), Depends(...)).
                return problems + (self._type_problems(elements[0], seen, depth) if elements else [])
            for element in elements:
                problems += self._type_problems(element, seen, depth)
            return problems
        if isinstance(node, (ast.Tuple, ast.List)):
            return [p for element in node.elts for p in self._type_problems(element, seen, depth)]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._type_problems(node.left, seen, depth) + self._type_problems(node.right, seen, depth)
        if isinstance(node, ast.Starred):
            return self._type_problems(node.value, seen, depth)
        return [f"{type(node).__name__} expression is not a static type"]

    def _check_type_expr(self, node: ast.AST, where: str) -> None:
        for problem in dict.fromkeys(self._type_problems(node, frozenset(), 0)):
            self.report("annotation-not-static", f"{where}: {problem}", node)

    # ---- strings ---------------------------------------------------------------------------------

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and not isinstance(self.parents.get(id(node)), ast.JoinedStr):
            self._screen_string(node.value, node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._maybe_screen_folded(node)
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._maybe_screen_folded(node)
        self.generic_visit(node)

    def _maybe_screen_folded(self, node: ast.AST) -> None:
        """Screen "__imp" + "ort__(...)" as the string it becomes, once, at the outermost fold."""
        parent = self.parents.get(id(node))
        if parent is not None and not isinstance(parent, ast.Constant) and fold_str(parent) is not None:
            return
        folded = fold_str(node)
        if folded is not None:
            self._screen_string(folded, node)

    def _screen_string(self, text: str, node: ast.AST) -> None:
        """Strings are data until something evaluates them: typing/pydantic forward references,
        pytest string conditions, doctest examples, str.format fields. Check them as that code."""
        for problem in format_field_problems(text):
            self.report("format-string", problem, node)
        if self.depth >= MAX_STRING_DEPTH:
            if "(" in text or "__" in text:
                self.report("string-nesting", "code nested in strings too deeply to screen", node)
            return
        if ">>>" in text:
            for example in doctest_examples(text):
                self._screen_embedded(example, "exec", node, "a doctest example")
        try:
            parsed = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        if needs_strict(parsed):
            self._screen_embedded(text.strip(), "eval", node, "a string that parses as code")
            return
        # Data-looking strings ("open", "user.name", "a,b,expected"): evaluating them only looks names
        # up, so only the lookups that are themselves escapes are refused.
        sub = Screen(
            self.facts,
            parsed,
            None,
            origin="a string literal",
            line=self._line(node),
            depth=self.depth + 1,
            modules=self.modules,
        )
        for inner in ast.walk(parsed):
            if isinstance(inner, ast.Name) and is_dunder(inner.id) and inner.id not in STRING_DUNDER_NAMES:
                sub.report("dunder-name", f"use of the name {inner.id!r} is not allowed", inner)
            elif isinstance(inner, ast.Attribute):
                problem = attr_problem(inner.attr, self_base=False)
                if problem:
                    sub.report(*problem, inner)
            elif isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                sub._screen_string(inner.value, inner)

    def _line(self, node: ast.AST) -> int | None:
        return self.fixed_line if self.fixed_line is not None else getattr(node, "lineno", None)

    def _screen_embedded(self, source: str, mode: str, node: ast.AST, origin: str) -> None:
        try:
            tree = ast.parse(source, mode=mode)
            table = symtable.symtable(source, "<embedded>", mode)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        Screen(
            self.facts, tree, table, origin=origin, line=self._line(node), depth=self.depth + 1, modules=self.modules
        ).visit(tree)
