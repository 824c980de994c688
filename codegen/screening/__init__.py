"""A static screener for model-generated Python code.

The code is parsed, never run. It must fit an *allowlist*: the modules, builtins, attributes and
names that API handlers, tests and algorithms need, and nothing that reaches the operating system,
the file system, the network (other than through httpx/FastAPI client code) or the interpreter's
own machinery (frames, code objects, the module table, the class graph). Anything the allowlist does
not name is a blocking finding, so a trick nobody thought of fails closed instead of slipping through.

Beyond the obvious (imports, builtins, dunders), the rules follow the ways an allowed library can be
turned into an evaluator: strings that typing/pydantic/FastAPI eval() as forward references, pytest's
string conditions and doctests, str.format fields, mock's import-by-name targets, attribute names
passed as strings (attrgetter, hasattr, pydantic aliases, __match_args__), and modules that allowed
modules happen to import (typing.sys, enum.bltns, fastapi.routing.anyio).

Bandit gives a second opinion and ruff a style opinion; neither can let code through that the
allowlist rejects.

Known limits (accepted deliberately; run accepted code in a sandbox anyway):
- Strings built at run time from non-literal parts cannot be read statically. They are harmless unless
  something evaluates them, so the evaluators are fenced instead: type positions must hold static type
  expressions whose names are bound to classes, imports or type aliases, and the other sinks need
  literals. An evaluator added by a future library version would not be known here; the tests that
  walk the installed libraries catch new module leaks, not new evaluators.
- Receivers' types are unknown, so attribute-name rules are global (`.sys`, `.f_globals`, `.traceback`)
  and private attributes are only allowed on self/cls/super(): a harmless user attribute of such a name,
  `other._value` in an __eq__, or `self.template.format(...)` is rejected too.
- Allowed library objects are trusted as a whole beyond the names refused here (a method that reads a
  file under an innocent name would not be noticed).

The package's parts change for different reasons: `policy` (the allowlist data, the part that moves
most), `modules` (resolving dotted paths against it), `strings` and `facts` (what code hides in strings,
what names are bound to), `rules` (the AST walk), `source` (checks on the raw text), `tools` (Bandit,
ruff) and `scoring` (findings into a verdict).
"""

from __future__ import annotations

import ast
import symtable
import warnings

from codegen.screening.facts import collect_facts
from codegen.screening.policy import (
    ALLOWED_BUILTINS,
    ALLOWED_MODULES,
    DEFAULT_POLICY,
    FORBIDDEN_BUILTINS,
    ModulePolicy,
    Policy,
    backend_policy,
)
from codegen.screening.rules import Screen
from codegen.screening.scoring import Finding, ScreenResult, screen_result
from codegen.screening.source import source_findings
from codegen.screening.tools import run_bandit, run_ruff, run_tools_tree

__all__ = [
    "ALLOWED_BUILTINS",
    "ALLOWED_MODULES",
    "DEFAULT_POLICY",
    "FORBIDDEN_BUILTINS",
    "MAX_CODE_CHARS",
    "Finding",
    "ModulePolicy",
    "Policy",
    "ScreenResult",
    "backend_policy",
    "run_tools_tree",
    "screen_code",
    "screen_result",
]

MAX_CODE_CHARS = 200_000


def _screen_ast(code: str, policy: Policy) -> list[Finding]:
    """The allowlist rules. Returns early with a syntax finding when Python would not compile the code."""
    # Parsing generated code (and the strings inside it) raises SyntaxWarning/DeprecationWarning for
    # things like "1st" or "\\d"; those belong to the code, not to this process's logs, and a "-W error"
    # filter must not turn them into a false syntax error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(code, filename="<generated>")
            # compile() catches what the parser lets through ('return' outside a function ...); it builds
            # bytecode but runs none of it. symtable gives the compiler's own scoping.
            compile(tree, "<generated>", "exec", dont_inherit=True)
            table = symtable.symtable(code, "<generated>", "exec")
        except SyntaxError as error:
            return [Finding("syntax-error", f"syntax error: {error.msg}", error.lineno, True)]
        except ValueError as error:  # null bytes
            return [Finding("syntax-error", f"unparsable source: {error}", None, True)]
        except (RecursionError, MemoryError):
            return [Finding("too-complex", "the code is nested too deeply to analyse", None, True)]
        facts = collect_facts(tree)
        try:
            Screen(facts, tree, table, modules=policy.modules).visit(tree)
        except RecursionError:
            facts.findings.append(Finding("too-complex", "the code is nested too deeply to analyse", None, True))
    return source_findings(code) + facts.findings


def screen_code(
    code: str, *, use_bandit: bool = True, use_lint: bool = True, policy: Policy = DEFAULT_POLICY
) -> ScreenResult:
    """Judge generated code without running it. Blocking findings reject it; lint findings only lower
    the score. `policy` says which modules it may import (the backend generator's projects may use more)."""
    if len(code) > MAX_CODE_CHARS:
        return screen_result([Finding("too-large", f"code longer than {MAX_CODE_CHARS} characters", None, True)])
    findings = _screen_ast(code, policy)
    if any(f.rule in {"syntax-error", "too-complex"} for f in findings):
        return screen_result(findings)
    if use_bandit:
        findings += run_bandit(code)
    if use_lint:
        findings += run_ruff(code)
    return screen_result(findings)
