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
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.util
import io
import json
import os
import re
import string
import subprocess
import symtable
import sys
import tokenize
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Finding", "ScreenResult", "screen_code"]

MAX_CODE_CHARS = 200_000
TOOL_TIMEOUT_SECONDS = 20
LINT_PENALTY = 0.05
LINT_SCORE_FLOOR = 0.5
# Strings inside strings inside strings are already absurd for real code; deeper nesting is refused.
MAX_STRING_DEPTH = 3
# Folding "a" * 10**9 at screening time would be a denial of service against the screener itself.
MAX_FOLDED_CHARS = 20_000


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    line: int | None
    blocking: bool


@dataclass(frozen=True)
class ScreenResult:
    passed: bool
    score: float
    findings: list[Finding]

    def as_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "score": self.score,
            "issues_count": len(self.findings),
            "issues": [{"rule": f.rule, "message": f.message, "line": f.line} for f in self.findings],
        }


# --------------------------------------------------------------------------------------------------
# Allowlists and the few deny-lists that back them up
# --------------------------------------------------------------------------------------------------


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass(frozen=True)
class _ModulePolicy:
    """What of an allowed top-level module may be used.

    `members`: None means every public member; otherwise only these names (plus `submodules`).
    `submodules`: None means any submodule (third-party packages whose layout we trust), otherwise
    only these. `blocked`: names refused anywhere in the package, as member or as submodule.
    `own_stdlib_named`: the package's own submodules that happen to share a stdlib module's name
    (pydantic.types), which must not be mistaken for a leaked stdlib module.
    """

    members: frozenset[str] | None = None
    submodules: frozenset[str] | None = frozenset()
    blocked: frozenset[str] = frozenset()
    own_stdlib_named: frozenset[str] = frozenset()


_OPEN = _ModulePolicy()

ALLOWED_MODULES: dict[str, _ModulePolicy] = {
    # Only `annotations`: the other features are no-ops on 3.11 or (barry_as_FLUFL) change the grammar.
    "__future__": _ModulePolicy(members=_names("annotations")),
    # ForwardRef turns an arbitrary string into code that typing evaluates with eval().
    "typing": _ModulePolicy(blocked=_names("ForwardRef")),
    "typing_extensions": _ModulePolicy(blocked=_names("ForwardRef evaluate_forward_ref")),
    "dataclasses": _OPEN,
    "datetime": _OPEN,
    # Clock reading and sleeping only: clock_settime/tzset change process or machine state.
    "time": _ModulePolicy(
        members=_names(
            "time time_ns sleep monotonic monotonic_ns perf_counter perf_counter_ns process_time process_time_ns"
            " gmtime localtime mktime strftime strptime asctime ctime struct_time timezone altzone daylight tzname"
        )
    ),
    # reset_tzpath would point tz lookups at arbitrary directories.
    "zoneinfo": _ModulePolicy(members=_names("ZoneInfo ZoneInfoNotFoundError available_timezones")),
    "math": _OPEN,
    "cmath": _OPEN,
    "statistics": _OPEN,
    "decimal": _OPEN,
    "fractions": _OPEN,
    "numbers": _OPEN,
    "re": _OPEN,
    # json.tool is a command-line program that opens the files named on its command line.
    "json": _ModulePolicy(submodules=_names("decoder encoder"), blocked=_names("tool")),
    "enum": _OPEN,
    # uuid1/getnode may spawn ifconfig/ip to find a MAC address (and leak it); the random kinds are pure.
    "uuid": _ModulePolicy(
        members=_names(
            "UUID uuid3 uuid4 uuid5 NAMESPACE_DNS NAMESPACE_URL NAMESPACE_OID NAMESPACE_X500 SafeUUID"
            " RESERVED_NCS RFC_4122 RESERVED_MICROSOFT RESERVED_FUTURE"
        )
    ),
    "collections": _ModulePolicy(submodules=_names("abc")),
    "itertools": _OPEN,
    "functools": _OPEN,
    # attrgetter/methodcaller take attribute names as strings: they are checked like getattr sinks.
    "operator": _OPEN,
    # Formatter.get_field resolves "{0.__class__}" style fields, i.e. getattr by string.
    "string": _ModulePolicy(blocked=_names("Formatter")),
    "textwrap": _OPEN,
    "abc": _OPEN,
    # contextlib is mostly pure control flow (contextmanager, suppress, ExitStack), but chdir changes the
    # process's working directory and redirect_std* swap interpreter-global streams.
    "contextlib": _ModulePolicy(blocked=_names("chdir redirect_stdout redirect_stderr")),
    "copy": _OPEN,
    "heapq": _OPEN,
    "bisect": _OPEN,
    "graphlib": _OPEN,
    "random": _OPEN,
    "secrets": _OPEN,
    "hashlib": _OPEN,
    "base64": _OPEN,
    # http.client/http.server/http.cookiejar are network and file access; the enums and cookie-header
    # parsing (http.cookies, which Starlette re-exports as starlette.requests.http_cookies) are pure.
    "http": _ModulePolicy(members=_names("HTTPStatus HTTPMethod cookies"), submodules=_names("cookies")),
    # TestLoader/main(argv=...) import modules by dotted name and call what they find; see _check_unittest_main.
    "unittest": _ModulePolicy(
        members=_names(
            "TestCase IsolatedAsyncioTestCase FunctionTestCase TestSuite TextTestRunner TestResult skip skipIf"
            " skipUnless expectedFailure SkipTest main addModuleCleanup mock"
        ),
        submodules=_names("mock"),
    ),
    # Task orchestration only: streams, subprocesses and raw sockets stay out (the event loop's own
    # socket/subprocess methods are refused by attribute name, see _BLOCKED_ATTRIBUTES).
    "asyncio": _ModulePolicy(
        members=_names(
            "run gather sleep wait wait_for create_task as_completed shield timeout timeout_at Timeout TaskGroup"
            " Task Future Queue PriorityQueue LifoQueue QueueEmpty QueueFull Lock Event Condition Semaphore"
            " BoundedSemaphore Barrier BrokenBarrierError CancelledError TimeoutError InvalidStateError iscoroutine"
            " iscoroutinefunction isfuture ensure_future current_task all_tasks Runner to_thread FIRST_COMPLETED"
            " FIRST_EXCEPTION ALL_COMPLETED get_event_loop get_running_loop new_event_loop set_event_loop"
        )
    ),
    # v1/deprecated/tools/parse carry parse_file & co (file reads); ImportString imports a module named by
    # *data*; the Path types hand out pathlib objects, i.e. the file system.
    "pydantic": _ModulePolicy(
        submodules=None,
        blocked=_names(
            "v1 deprecated tools parse env_settings ImportString FilePath DirectoryPath NewPath SocketPath"
            " parse_file_as load_file"
        ),
        own_stdlib_named=_names("types dataclasses json typing warnings"),
    ),
    "pydantic_core": _ModulePolicy(submodules=None),
    # pydantic's own typing-introspection helpers (pydantic.fields exposes them).
    "typing_inspection": _ModulePolicy(submodules=None),
    "annotated_types": _OPEN,
    # Static files, FileResponse and templates serve or read arbitrary paths (and Jinja is its own
    # sandbox-escape playground); the CLI runs servers.
    "fastapi": _ModulePolicy(
        submodules=None,
        # (v2: the internal pydantic-compat layer, fastapi._compat.v2, re-exported by fastapi.utils)
        blocked=_names("staticfiles templating cli StaticFiles FileResponse Jinja2Templates v2"),
        own_stdlib_named=_names("types"),
    ),
    "starlette": _ModulePolicy(
        submodules=None,
        # (opentelemetry: the tracing middleware hands out the OpenTelemetry SDK's process-global state)
        blocked=_names("staticfiles templating config StaticFiles FileResponse Jinja2Templates opentelemetry"),
        own_stdlib_named=_names("types"),
    ),
    "httpx": _ModulePolicy(submodules=None, blocked=_names("main")),
    # The httpx fork Starlette's TestClient is built on (starlette.testclient.httpx is this module).
    "httpx2": _ModulePolicy(submodules=None, blocked=_names("main")),
    # Test-writing API only. importorskip imports any module, main/Pytester run pytest, MonkeyPatch and
    # TempPathFactory reach the environment and the file system, set_trace opens a debugger.
    "pytest": _ModulePolicy(
        members=_names(
            "fixture mark raises approx param warns skip fail xfail deprecated_call FixtureRequest CaptureFixture"
            " LogCaptureFixture ExceptionInfo MarkDecorator RaisesExc RaisesGroup WarningsRecorder PytestWarning"
            " Subtests HIDDEN_PARAM"
        )
    ),
}

# Modules that must not be reached through an attribute of anything, whatever the receiver. The names
# are rare as ordinary attribute names, so checking them everywhere (and with leading underscores, as
# random._os or collections._sys) costs little and closes `typing.sys.modules[...]` style walks.
_BLOCKED_MODULE_NAMES = _names(
    "os sys builtins subprocess posixsubprocess importlib frozen_importlib frozen_importlib_external ctypes"
    " pickle cpickle marshal posix nt winapi codecs pkgutil inspect shutil pty gc runpy zipimport tempfile"
    " pathlib multiprocessing threading webbrowser sqlite3 shelve socket socketserver io mmap urllib requests"
    " ftplib smtplib telnetlib xmlrpc pdb bdb pydoc linecache tracemalloc sysconfig sitebuiltins uvicorn"
    # third-party modules that FastAPI/Starlette/httpx import and that spawn processes, open files or
    # sockets, render templates or read .env files (fastapi.routing.anyio.run_process ...)
    " anyio trio httpcore jinja2 dotenv watchfiles python_multipart email_validator"
)

_BLOCKED_ATTRIBUTES = _names(
    # frame, code, generator and traceback internals: the classic routes to f_globals/__builtins__
    "gi_frame gi_code gi_yieldfrom cr_frame cr_code cr_await cr_origin ag_frame ag_code ag_await tb_frame tb_next"
    " f_globals f_locals f_builtins f_back f_code f_trace co_code co_consts co_names co_varnames co_freevars"
    " co_cellvars co_filename co_lnotab co_linetable co_exceptiontable func_globals func_code func_closure"
    " func_defaults func_dict im_func im_self im_class cell_contents"
    # class-graph walking without dunders
    " mro"
    # the module table, the environment, and renamed module handles (enum imports builtins as bltns)
    " modules environ bltns _bootstrap _bootstrap_external _imp"
    # code construction and interactive interpreters
    " CodeType FunctionType LambdaType CellType FrameType TracebackType eval exec exec_ interact"
    " InteractiveConsole InteractiveInterpreter"
    # import-by-name and file-reading helpers that live on otherwise harmless objects
    " getfixturevalue importorskip import_module import_string load_module exec_module find_spec find_module"
    " find_loader get_data resolve_name parse_file parse_file_as load_file FileIO open_code libc_ver"
    " getoutput getstatusoutput check_output check_call"
    # frame access helpers; pytest's ExceptionInfo.traceback/.tb lead to frames (Frame.eval runs strings)
    " currentframe _getframe traceback tb get_stack print_stack"
    # event-loop and transport methods that spawn processes or open sockets outside httpx
    " get_extra_info subprocess_exec subprocess_shell create_subprocess_exec create_subprocess_shell"
    " create_connection create_server create_unix_connection create_unix_server create_datagram_endpoint"
    " connect_accepted_socket connect_read_pipe connect_write_pipe open_connection open_unix_connection"
    " start_server start_unix_server sock_connect sock_accept sock_recv sock_recv_into sock_recvfrom"
    " sock_sendall sock_sendto sock_sendfile sendfile add_reader add_writer add_signal_handler getaddrinfo"
    " getnameinfo"
)

# Dunder attributes that are ordinary protocol use: super().__init__(), cls.__name__, explicit operator
# calls. Everything else (__class__, __globals__, __dict__, __subclasses__, __self__, __code__ ...) is
# a step of some known escape, so it is refused rather than enumerated. __call__ is left out on purpose:
# `patch.object.__call__(...)` would be a call the argument checks below do not recognise.
_ARITHMETIC = "add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor or"
ALLOWED_DUNDER_ATTRS = _names(
    "__init__ __new__ __post_init__ __init_subclass__ __name__ __qualname__ __doc__ __module__ __version__"
    " __all__ __members__ __slots__ __match_args__ __enter__ __exit__ __aenter__ __aexit__ __repr__ __str__"
    " __format__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ __hash__ __bool__ __len__ __iter__ __next__"
    " __aiter__ __anext__ __contains__ __getitem__ __setitem__ __delitem__ __missing__ __add__"
    " __sub__ __mul__ __truediv__ __floordiv__ __mod__ __neg__ __abs__ __int__ __float__ __index__ __round__"
    " __copy__ __deepcopy__"
)

# Dunders a class may *define*. Definitions only run code that is itself screened, so the list is
# broad; the exceptions are hooks that run at surprising times or hand a callable to the interpreter:
# __del__ (runs at collection or interpreter shutdown, outside any time limit), the pickle/copy
# protocol (__reduce__ returns "call this with these args", a call site no static check sees),
# __fspath__ (the OS path protocol) and __mro_entries__ (rewrites a class's bases).
DUNDER_DEFINITIONS = (
    ALLOWED_DUNDER_ATTRS
    | _names(
        "__set_name__ __class_getitem__ __get__ __set__ __delete__ __getattr__ __getattribute__ __setattr__"
        " __delattr__ __dir__ __sizeof__ __instancecheck__ __subclasscheck__ __subclasshook__ __prepare__"
        " __bytes__ __complex__ __trunc__ __floor__ __ceil__ __length_hint__ __reversed__ __await__ __pos__"
        " __invert__ __bool__ __call__"
    )
    | frozenset(f"__{prefix}{op}__" for op in _ARITHMETIC.split() for prefix in ("", "r", "i"))
)

# Bare dunder names usable anywhere. __name__ is for `if __name__ == "__main__"`; __builtins__,
# __loader__, __spec__, __file__, __class__ (the implicit cell) are refused.
ALLOWED_DUNDER_NAMES = _names("__name__ __doc__ __all__ __version__ __author__ __debug__")
# In data strings: also the names such strings legitimately mention.
_STRING_DUNDER_NAMES = ALLOWED_DUNDER_NAMES | ALLOWED_DUNDER_ATTRS | _names("__main__ __weakref__")
# pydantic.create_model takes its options as dunder keywords.
_ALLOWED_DUNDER_KEYWORDS = _names("__base__ __config__ __module__ __validators__ __doc__ __cls_kwargs__")
# uds= opens a Unix socket (docker.sock ...); the namespace keywords feed names into forward-ref eval.
_BLOCKED_KEYWORDS = _names("uds globalns localns globals locals eval_str")

# namedtuple's public API is spelled with underscores.
_PUBLIC_UNDERSCORE_ATTRS = _names("_replace _asdict _fields _field_defaults _make")
_SUNDER = re.compile(r"^_[a-z][a-z0-9]*(?:_[a-z0-9]+)*_$")

# Builtins that may be called. Exception classes are added below from the builtins module itself.
_ALLOWED_BUILTINS_BASE = _names(
    "abs aiter all anext any ascii bin bool bytearray bytes callable chr classmethod complex dict divmod"
    " enumerate filter float format frozenset hasattr hash hex id int isinstance issubclass iter len list map"
    " max min next object oct ord pow print property range repr reversed round set slice sorted staticmethod"
    " str sum super tuple type zip"
)
ALLOWED_BUILTINS = _ALLOWED_BUILTINS_BASE | frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
)
# Refused as bare names in any position (not only calls), since `f = eval; f(...)` is the same call.
# getattr/setattr/delattr take attribute names as run-time strings; vars/globals/locals/dir expose
# namespaces; help/license/credits/copyright page files through a pager; input/breakpoint/exit/quit
# touch the terminal or the process; memoryview exposes raw buffers.
FORBIDDEN_BUILTINS = _names(
    "eval exec compile open breakpoint input getattr setattr delattr globals locals vars dir help memoryview"
    " exit quit license credits copyright __import__ __build_class__"
)

# Names of dangerous modules; inside strings that some library evaluates (pytest's skipif conditions
# see os/sys/platform/config), a bare reference to one is refused.
_NOT_ALLOWED_STDLIB = frozenset(sys.stdlib_module_names) - frozenset(ALLOWED_MODULES)

# pytest fixtures that hand out the file system, the environment, the plugin system or the config.
DANGEROUS_FIXTURES = _names(
    "tmp_path tmp_path_factory tmpdir tmpdir_factory monkeypatch pytester testdir pytestconfig cache"
    " doctest_namespace record_property record_xml_attribute record_testsuite_property"
)
# `request` is needed for parametrised fixtures; its config/node/getfixturevalue are the way out.
_REQUEST_ATTRS = _names("param param_index addfinalizer fixturename scope function cls instance applymarker")

# Dunder attributes that may be assigned: decorators copy names and docs. Assigning __match_args__,
# __init__ ... would change what pattern matching or construction looks up, out of the checks' sight.
_ASSIGNABLE_DUNDER_ATTRS = _names("__doc__ __name__ __qualname__ __module__")

# pydantic reads attributes named by aliases (from_attributes=True does getattr(obj, alias)), so aliases
# must be literals the string checks can see; generators must be pydantic's own case converters.
_ALIAS_KEYWORDS = _names("alias validation_alias serialization_alias")
_ALIAS_GENERATORS = _names("to_camel to_pascal to_snake")

# Constructor hooks: fine on super()/self/cls, but `adapter.__init__(other_type)` re-runs a library
# object's constructor on arguments that never went through the call checks.
_CONSTRUCTOR_DUNDERS = _names("__init__ __new__ __post_init__ __init_subclass__")
_SELF_NAMES = _names("self cls mcs metacls")

# Dunder methods that read or write an attribute named by a string argument.
_STRING_NAME_DUNDERS = _names("__getattribute__ __getattr__ __setattr__ __delattr__")

_TYPE_FACTORY_NAMES = _names(
    "TypeVar ParamSpec TypeVarTuple NewType NamedTuple TypedDict namedtuple make_dataclass create_model"
    " TypeAliasType Enum IntEnum StrEnum Flag IntFlag"
)
_BUILTIN_GENERICS = _names("list dict set frozenset tuple type")

# Callables whose arguments get special checks (literal attribute names, literal import targets,
# static types). Referring to them other than by calling them would let an alias skip those checks.
_SINK_QUALNAMES = frozenset(
    {
        "operator.attrgetter",
        "operator.methodcaller",
        "unittest.mock.patch",
        "unittest.mock.patch.object",
        "unittest.mock.patch.dict",
        "unittest.mock.patch.multiple",
        "unittest.main",
        "dataclasses.make_dataclass",
        "pytest.fixture",
    }
    | {f"{module}.{name}" for module in ("typing", "typing_extensions") for name in ("get_type_hints", "TypeVar")}
    | {f"{module}.{name}" for module in ("typing", "typing_extensions") for name in ("NewType", "NamedTuple")}
    | {"typing.TypedDict", "typing_extensions.TypedDict", "pydantic.TypeAdapter", "pydantic.create_model"}
)

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_FIELD_PART = re.compile(r"\.([^.\[]*)|\[([^\]]*)\]")


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _attr_problem(name: str, *, self_base: bool) -> tuple[str, str] | None:
    """The rule an attribute name breaks, whatever the object it is looked up on.

    String sinks (hasattr, attrgetter, format fields) pass raw strings here, which getattr does not
    NFKC-normalise; they are checked in both spellings and non-ASCII is refused outright.
    """
    normal = unicodedata.normalize("NFKC", name)
    if normal != name or not normal.isascii():
        return "non-ascii-identifier", f"attribute name {name!r} is not plain ASCII"
    if _is_dunder(normal):
        if normal in ALLOWED_DUNDER_ATTRS:
            return None
        return "dunder-attribute", f"dunder attribute {normal!r} is not allowed"
    stripped = normal.lstrip("_")
    if (
        normal in _BLOCKED_ATTRIBUTES
        or normal in _BLOCKED_MODULE_NAMES
        or (normal.startswith("_") and stripped in _BLOCKED_MODULE_NAMES)
    ):
        return "attribute-not-allowed", f"attribute {normal!r} reaches interpreter, OS or module internals"
    if (
        normal.startswith("_")
        and not self_base
        and not _SUNDER.match(normal)
        and normal not in _PUBLIC_UNDERSCORE_ATTRS
    ):
        return "private-attribute", f"private attribute {normal!r} of an object this code does not own"
    return None


@functools.lru_cache(maxsize=64)
def _package_dirs(top: str) -> tuple[Path, ...]:
    """Where an installed package's files are, found without importing (running) it."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return ()
    locations = spec.submodule_search_locations if spec is not None else None
    return tuple(Path(location) for location in locations or ())


@functools.lru_cache(maxsize=4096)
def _is_own_submodule(path: str, member: str) -> bool:
    """Whether `path.member` is a submodule of a third-party package (fastapi.requests,
    fastapi.middleware.gzip) rather than a module that package imported under that name."""
    top, _, rest = path.partition(".")
    policy = ALLOWED_MODULES.get(top)
    if policy is None or policy.submodules is not None:
        return False  # stdlib packages list their submodules explicitly
    directories = _package_dirs(top)
    if not directories:
        return path == top and member in policy.own_stdlib_named  # not installed here: the static list
    for base in directories:
        directory = base.joinpath(*rest.split(".")) if rest else base
        if (directory / f"{member}.py").is_file() or (directory / member / "__init__.py").is_file():
            return True
        if any(directory.glob(f"{member}.*.so")) or any(directory.glob(f"{member}.*.pyd")):
            return True
    return False


def _path_is_module(path: str) -> bool:
    """Whether a dotted path rooted at an import names a module rather than some object in one."""
    top, _, rest = path.partition(".")
    if not rest:
        return True
    policy = ALLOWED_MODULES.get(top)
    if policy is None:
        return False
    if policy.submodules is None:
        if _package_dirs(top):
            parts = path.split(".")
            return all(_is_own_submodule(".".join(parts[:i]), parts[i]) for i in range(1, len(parts)))
        # Not installed here: module names are lowercase, classes and constants are not.
        return rest.islower()
    return rest in policy.submodules


# Members that share an allowed module's name without being that module.
_CLASSES_NAMED_LIKE_MODULES = frozenset({"datetime.time"})


@functools.lru_cache(maxsize=2048)
def _is_installed_module_name(name: str) -> bool:
    """Whether `name` is an importable top-level module here. Only locates it (no module code runs);
    a bare directory (namespace package, origin None) does not count."""
    if not name.isidentifier():
        return False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


def _child_path(path: str, member: str) -> str:
    top = path.partition(".")[0]
    policy = ALLOWED_MODULES.get(top, _OPEN)
    at_top = path == top
    if member == top or f"{path}.{member}" in _CLASSES_NAMED_LIKE_MODULES:
        return f"{path}.{member}"  # datetime.datetime, copy.copy: the member, not the module again
    if _is_own_submodule(path, member) or (at_top and policy.submodules and member in policy.submodules):
        return f"{path}.{member}"
    # typing.functools is the functools module: re-root so that functools' own policy applies.
    if member in ALLOWED_MODULES and member in sys.stdlib_module_names and _path_is_module(path):
        return member
    return f"{path}.{member}"


def _member_problem(path: str, member: str) -> str | None:
    """Why `path.member` is refused, for a path rooted at an allowed import (dunders and private
    names are judged by _attr_problem)."""
    top = path.partition(".")[0]
    policy = ALLOWED_MODULES.get(top)
    if policy is None:
        return None
    at_top = path == top
    if member.startswith("_") and not _is_dunder(member):
        # Even the names _attr_problem lets through on objects (_fields, _value_) are internals here.
        return f"private member {path}.{member}"
    if member in policy.blocked:
        return f"{path}.{member} is not allowed"
    allowed_sub = at_top and bool(policy.submodules) and member in (policy.submodules or ())
    if at_top and policy.members is not None and member not in policy.members and not allowed_sub:
        return f"{member!r} is not an allowed member of {top!r}"
    if not _path_is_module(path) or allowed_sub or _is_own_submodule(path, member):
        return None
    # Third-party modules hold whatever they imported (fastapi.routing.anyio ...); their layout is not
    # listed here, so a lowercase member named like an installed module is taken to be that module.
    leaked_third_party = (
        policy.submodules is None
        and member not in ALLOWED_MODULES
        and member.islower()
        and _is_installed_module_name(member)
    )
    if member in _NOT_ALLOWED_STDLIB or leaked_third_party:
        return f"{path}.{member} reaches the module {member!r}, which is not allowed"
    return None


def _fold_str(node: ast.AST) -> str | None:
    """The value of a string expression built only from literals ("__imp" + "ort__", chr(95) ...)."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Add):
            left, right = _fold_str(node.left), _fold_str(node.right)
            if left is not None and right is not None and len(left) + len(right) <= MAX_FOLDED_CHARS:
                return left + right
        if isinstance(node.op, ast.Mult):
            for text_node, count_node in ((node.left, node.right), (node.right, node.left)):
                text = _fold_str(text_node)
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
                inner = _fold_str(value.value)
            else:
                inner = _fold_str(value)
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
            return _fold_str(node.args[0])
        if isinstance(func, ast.Attribute) and func.attr == "join" and len(node.args) == 1:
            separator = _fold_str(func.value)
            items = node.args[0]
            if separator is not None and isinstance(items, (ast.List, ast.Tuple)):
                pieces = [_fold_str(item) for item in items.elts]
                if all(piece is not None for piece in pieces):
                    joined = separator.join(piece for piece in pieces if piece is not None)
                    return joined if len(joined) <= MAX_FOLDED_CHARS else None
    return None


def _format_field_problems(template: str, depth: int = 0) -> list[str]:
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
            for match in _FIELD_PART.finditer(rest):
                if match.group(0).startswith("."):
                    problem = _attr_problem(match.group(1), self_base=False)
                    if problem:
                        problems.append(f"format field {{{field_name}}}: {problem[1]}")
                else:
                    key = match.group(2).strip()
                    if _is_dunder(unicodedata.normalize("NFKC", key)) and key not in _STRING_DUNDER_NAMES:
                        problems.append(f"format field {{{field_name}}} looks up the dunder key {key!r}")
        if format_spec and "{" in format_spec and depth < 2:
            problems.extend(_format_field_problems(format_spec, depth + 1))
    return problems


def _last_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _attr_chain(node: ast.AST) -> list[str] | None:
    """["mocker", "patch", "object"] for mocker.patch.object."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def _is_str_constant(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


# --------------------------------------------------------------------------------------------------
# Facts about the whole module, gathered before the rules run
# --------------------------------------------------------------------------------------------------


@dataclass
class _ModuleFacts:
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


def _value_kind(value: ast.expr) -> str:
    if isinstance(value, ast.Call):
        return "typedef" if _last_name(value.func) in _TYPE_FACTORY_NAMES else "other"
    if isinstance(value, (ast.Name, ast.Attribute, ast.Subscript)):
        return "typealias"
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitOr):
        return "typealias"
    if isinstance(value, ast.Constant) and (value.value is None or isinstance(value.value, str)):
        return "typealias"
    return "other"


def _bind_target(facts: _ModuleFacts, target: ast.expr, value: ast.expr | None) -> None:
    if isinstance(target, ast.Name):
        if value is None:
            facts.bind(target.id, "other")
        else:
            kind = _value_kind(value)
            facts.bind(target.id, kind, value if kind == "typealias" else None)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _bind_target(facts, element, None)
    elif isinstance(target, ast.Starred):
        _bind_target(facts, target.value, None)


def _collect_facts(tree: ast.Module) -> _ModuleFacts:
    facts = _ModuleFacts()
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
                _bind_target(facts, target, node.value)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None and isinstance(node.target, ast.Name):
                if _last_name(node.annotation) == "TypeAlias":
                    facts.bind(node.target.id, "typealias", node.value)
                else:
                    _bind_target(facts, node.target, node.value)
        elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor, ast.comprehension)):
            _bind_target(facts, node.target, None)
        elif isinstance(node, ast.NamedExpr):
            facts.bind(node.target.id, "other")
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            _bind_target(facts, node.optional_vars, None)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            facts.bind(node.name, "other")
        elif isinstance(node, ast.arg):
            facts.bind(node.arg, "param")
        elif isinstance(node, ast.Call) and _last_name(node.func) == "fixture":
            facts.fixture_functions.update(arg.id for arg in node.args if isinstance(arg, ast.Name))
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            facts.bind(node.name, "other")
        elif isinstance(node, ast.MatchMapping) and node.rest:
            facts.bind(node.rest, "other")
    return facts


# --------------------------------------------------------------------------------------------------
# The rules
# --------------------------------------------------------------------------------------------------

_SCOPE_KEYS: dict[type[ast.AST], str] = {
    ast.ListComp: "listcomp",
    ast.SetComp: "setcomp",
    ast.DictComp: "dictcomp",
    ast.GeneratorExp: "genexpr",
}


class _Screen(ast.NodeVisitor):
    """Walks one tree (the module, or code found inside one of its strings) and records findings.

    Scoping comes from `symtable`, the compiler's own analysis, so "is this `input` the builtin or a
    parameter?" is answered the way Python will answer it, not by guessing.
    """

    def __init__(
        self,
        facts: _ModuleFacts,
        tree: ast.AST,
        table: symtable.SymbolTable | None,
        *,
        origin: str = "",
        line: int | None = None,
        depth: int = 0,
    ) -> None:
        self.facts = facts
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
            if path is None or path.partition(".")[0] not in ALLOWED_MODULES:
                return None
            return path
        if isinstance(node, ast.Attribute):
            base = self._module_path(node.value)
            return None if base is None else _child_path(base, node.attr)
        return None

    @staticmethod
    def _is_self_base(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in _SELF_NAMES
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
        problem = _attr_problem(member, self_base=False)
        # fastapi.requests is FastAPI's own module, not the requests library the name rule is about.
        if problem and not (problem[0] == "attribute-not-allowed" and _is_own_submodule(path, member)):
            return problem[1]
        return _member_problem(path, member)

    def _check_import_path(self, dotted: str, node: ast.AST) -> str | None:
        parts = dotted.split(".")
        top = parts[0]
        if top not in ALLOWED_MODULES:
            self.report("import-not-allowed", f"import of {dotted!r}: module {top!r} is not on the allowlist", node)
            return None
        path = top
        for part in parts[1:]:
            problem = self._import_member_problem(path, part)
            if problem:
                self.report("import-not-allowed", f"import of {dotted!r}: {problem}", node)
                return None
            path = _child_path(path, part)
        return path

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "__future__":
                self.report("import-not-allowed", "import of the __future__ module itself", node)
                continue
            self._check_import_path(alias.name, node)
            if alias.asname and _is_dunder(alias.asname):
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
            if alias.asname and _is_dunder(alias.asname):
                self.report("dunder-name", f"import bound to the dunder name {alias.asname!r}", node)
            if path is None:
                continue
            problem = self._import_member_problem(path, alias.name)
            if problem:
                self.report("import-not-allowed", f"from {module} import {alias.name}: {problem}", node)

    # ---- definitions and scopes ------------------------------------------------------------------

    def _check_definition_name(self, name: str, node: ast.AST) -> None:
        if _is_dunder(name) and name not in DUNDER_DEFINITIONS:
            self.report("dunder-definition", f"defining {name!r} is not allowed", node)
        elif name.startswith("pytest_"):
            self.report(
                "definition-not-allowed",
                f"{name!r} would be picked up as a pytest hook, which receives pytest's config and plugins",
                node,
            )

    def _check_argument_names(self, args: ast.arguments) -> None:
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and _is_dunder(arg.arg):
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
            _last_name(d.func if isinstance(d, ast.Call) else d) == "fixture"
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
                    if not (isinstance(parent, ast.Attribute) and parent.attr in _REQUEST_ATTRS):
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
        if _is_dunder(node.name):
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
            return name in _STRING_DUNDER_NAMES
        if name in ALLOWED_DUNDER_NAMES:
            return True
        # Class bodies may bind and reuse protocol names: `__hash__ = None`, `__radd__ = __add__`.
        return self.scopes[-1] == "class" and name in DUNDER_DEFINITIONS

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if _is_dunder(name):
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
        elif self.origin and name in _NOT_ALLOWED_STDLIB | _BLOCKED_MODULE_NAMES and name not in self.facts.bindings:
            # pytest evaluates skipif strings with os/sys/platform in scope, and other evaluators may too.
            self.report("name-not-allowed", f"reference to the module name {name!r}", node)

    def visit_Global(self, node: ast.Global) -> None:
        self._check_declared_names(node.names, node)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self._check_declared_names(node.names, node)

    def _check_declared_names(self, names: list[str], node: ast.AST) -> None:
        for name in names:
            if _is_dunder(name) and name not in ALLOWED_DUNDER_NAMES:
                self.report("dunder-name", f"declaration of the name {name!r}", node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name and _is_dunder(node.name):
            self.report("dunder-name", f"exception bound to {node.name!r}", node)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name and _is_dunder(node.name):
            self.report("dunder-name", f"pattern capture named {node.name!r}", node)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name and _is_dunder(node.name):
            self.report("dunder-name", f"pattern capture named {node.name!r}", node)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest and _is_dunder(node.rest):
            self.report("dunder-name", f"pattern capture named {node.rest!r}", node)
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        # `case object(__class__=c)` is getattr(subject, "__class__") spelled as a pattern.
        for attr in node.kwd_attrs:
            problem = _attr_problem(attr, self_base=False)
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
        literal = isinstance(value, (ast.Tuple, ast.List)) and all(_is_str_constant(e) for e in value.elts)
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
        if not (attr in _STRING_NAME_DUNDERS and called_here):
            problem = _attr_problem(attr, self_base=self._is_self_base(node.value))
            # pytest.mark.<name> names a marker (pytest.mark.anyio), it looks nothing up; fastapi.requests
            # is FastAPI's own module, not the requests library.
            if problem and not (
                problem[0] == "attribute-not-allowed"
                and path is not None
                and (path == "pytest.mark" or _is_own_submodule(path, attr))
            ):
                self.report(*problem, node)
                reported = True
        if isinstance(node.ctx, ast.Load):
            chain = _attr_chain(node)
            if chain and chain[0] == "mocker" and len(chain) > 1 and chain[1] in {"patch", "spy"}:
                self._check_sink_reference(node, "mocker." + ".".join(chain[1:]))
            else:
                self._check_sink_reference(node, self._module_path(node))
        if (
            not reported
            and _is_dunder(attr)
            and isinstance(node.ctx, (ast.Store, ast.Del))
            and attr not in _ASSIGNABLE_DUNDER_ATTRS
        ):
            self.report("dunder-attribute", f"assigning the dunder attribute {attr!r} is not allowed", node)
            reported = True
        if attr in _CONSTRUCTOR_DUNDERS and not reported:
            self._check_constructor_dunder(node, parent if called_here else None)
        if path is not None:
            problem_text = None if reported else _member_problem(path, attr)
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
            and call.args[0].id in _SELF_NAMES
        ):
            return  # Base.__init__(self, ...), object.__new__(cls)
        self.report(
            "dunder-attribute",
            f"{node.attr} may only be used on super(), self or cls: re-running another object's constructor"
            " would feed it arguments the call checks never saw",
            node,
        )

    def _check_sink_reference(self, node: ast.expr, path: str | None) -> None:
        if path is None or not (path in _SINK_QUALNAMES or path.startswith("mocker.")):
            return
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Call) and parent.func is node:
            return
        if isinstance(parent, ast.Attribute) and parent.value is node and not _is_dunder(parent.attr):
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
        if _is_str_constant(node):
            return True
        if isinstance(node, ast.Name):
            bindings = self.facts.bindings.get(node.id, [])
            return bool(bindings) and all(kind == "typealias" and _is_str_constant(value) for kind, value in bindings)
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
        chain = _attr_chain(func)
        if chain and chain[0] == "mocker" and len(chain) > 1:
            # pytest-mock's fixture wraps unittest.mock.patch and adds spy(obj, "name").
            if chain[1] == "spy":
                self._check_string_attribute(node.args[1] if len(node.args) > 1 else None, node, "mocker.spy")
            else:
                self._check_qualified_call("unittest.mock." + ".".join(chain[1:]), node)
        if isinstance(func, ast.Attribute) and func.attr in _STRING_NAME_DUNDERS:
            self._check_string_name_dunder(func, node)
        if isinstance(func, ast.Attribute) and func.attr == "__getitem__" and self._is_generic_base(func.value):
            for arg in node.args[:1]:
                self._check_type_expr(arg, "generic type argument")
        if _last_name(func) == "fixture" or qualname == "pytest.fixture":
            # pytest.fixture(lambda request: ...) registers the lambda as a fixture.
            for arg in node.args:
                if isinstance(arg, ast.Lambda):
                    self._check_fixture_parameters(arg.args, strict=True)
        if chain and len(chain) >= 2 and chain[-2:] in (["mark", "skipif"], ["mark", "xfail"]):
            condition = (
                node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "condition"), None)
            )
            if condition is not None and _fold_str(condition) is not None:
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
        if self._is_local(name) or name in FORBIDDEN_BUILTINS or _is_dunder(name) or name in self.facts.bindings:
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
        if _is_str_constant(value) or (isinstance(value, ast.Constant) and value.value is None):
            return True
        if isinstance(value, ast.Call) and _last_name(value.func) in {"AliasPath", "AliasChoices"}:
            return not value.keywords and all(
                (isinstance(a, ast.Constant) and isinstance(a.value, (str, int))) or self._is_literal_alias(a)
                for a in value.args
            )
        return False

    def _is_known_alias_generator(self, value: ast.AST) -> bool:
        if _last_name(value) in _ALIAS_GENERATORS and isinstance(value, (ast.Name, ast.Attribute)):
            return True
        if isinstance(value, ast.Call) and _last_name(value.func) == "AliasGenerator":
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
            problem = _attr_problem(part, self_base=self_base)
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
        if parts[0] not in ALLOWED_MODULES:
            self.report("import-not-allowed", f"{what}({dotted!r}) imports {parts[0]!r}, which is not allowed", node)
            return
        path = parts[0]
        for part in parts[1:]:
            problem = self._import_member_problem(path, part)
            if problem:
                self.report("import-not-allowed", f"{what}({dotted!r}): {problem}", node)
                return
            path = _child_path(path, part)

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
            if _is_str_constant(target):
                self._check_import_target(target, node, "patch." + qualname.rpartition(".")[2])
            if qualname.endswith("multiple"):
                for keyword in node.keywords:
                    if keyword.arg:
                        problem = _attr_problem(keyword.arg, self_base=False)
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
                if keyword.arg and not _is_dunder(keyword.arg):
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
            if arg in _ALIAS_KEYWORDS and not self._is_literal_alias(keyword.value):
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
            if arg in _BLOCKED_KEYWORDS:
                self.report("keyword-not-allowed", f"keyword argument {arg}= is not allowed", keyword.value)
            elif _is_dunder(arg):
                if arg not in _ALLOWED_DUNDER_KEYWORDS:
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
            or (top in ALLOWED_MODULES and qualname.rpartition(".")[2][:1].isupper())
            or (isinstance(base, ast.Name) and base.id in _BUILTIN_GENERICS and self._is_builtin_name(base, base.id))
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
            kind = _last_name(node.value)
            if kind == "Literal":
                for element in elements:
                    literal = (
                        isinstance(element, (ast.Constant, ast.Attribute))
                        or (isinstance(element, ast.UnaryOp) and isinstance(element.operand, ast.Constant))
                        or (isinstance(element, ast.Subscript) and _last_name(element.value) == "Literal")
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
        if parent is not None and not isinstance(parent, ast.Constant) and _fold_str(parent) is not None:
            return
        folded = _fold_str(node)
        if folded is not None:
            self._screen_string(folded, node)

    def _screen_string(self, text: str, node: ast.AST) -> None:
        """Strings are data until something evaluates them: typing/pydantic forward references,
        pytest string conditions, doctest examples, str.format fields. Check them as that code."""
        for problem in _format_field_problems(text):
            self.report("format-string", problem, node)
        if self.depth >= MAX_STRING_DEPTH:
            if "(" in text or "__" in text:
                self.report("string-nesting", "code nested in strings too deeply to screen", node)
            return
        if ">>>" in text:
            for example in _doctest_examples(text):
                self._screen_embedded(example, "exec", node, "a doctest example")
        try:
            parsed = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        if _needs_strict(parsed):
            self._screen_embedded(text.strip(), "eval", node, "a string that parses as code")
            return
        # Data-looking strings ("open", "user.name", "a,b,expected"): evaluating them only looks names
        # up, so only the lookups that are themselves escapes are refused.
        sub = _Screen(self.facts, parsed, None, origin="a string literal", line=self._line(node), depth=self.depth + 1)
        for inner in ast.walk(parsed):
            if isinstance(inner, ast.Name) and _is_dunder(inner.id) and inner.id not in _STRING_DUNDER_NAMES:
                sub.report("dunder-name", f"use of the name {inner.id!r} is not allowed", inner)
            elif isinstance(inner, ast.Attribute):
                problem = _attr_problem(inner.attr, self_base=False)
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
        _Screen(self.facts, tree, table, origin=origin, line=self._line(node), depth=self.depth + 1).visit(tree)


def _needs_strict(tree: ast.AST) -> bool:
    strict = (ast.Call, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr)
    strict += (ast.Await, ast.Yield, ast.YieldFrom)
    return any(isinstance(node, strict) for node in ast.walk(tree))


def _doctest_examples(text: str) -> list[str]:
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


# --------------------------------------------------------------------------------------------------
# Source-level checks (before and beside the AST)
# --------------------------------------------------------------------------------------------------


def _source_findings(code: str) -> list[Finding]:
    findings: list[Finding] = []
    for number, line in enumerate(code.splitlines()[:2], start=1):
        match = _CODING_COOKIE.match(line)
        if match and match.group(1).lower().replace("_", "-") not in {"utf-8", "utf8", "ascii", "us-ascii"}:
            # The text screened here is what the caller decoded; a file with this cookie would be
            # re-decoded by Python (utf-7 hides whole lines inside "+...-" runs).
            findings.append(
                Finding("encoding-declaration", f"source declares the encoding {match.group(1)!r}", number, True)
            )
    for number, line in enumerate(code.splitlines(), start=1):
        if any(char in _BIDI_CONTROLS for char in line):
            findings.append(
                Finding(
                    "bidi-control-character",
                    "bidirectional control character: the code reads differently from how it runs",
                    number,
                    True,
                )
            )
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.NAME and not token.string.isascii():
                normal = unicodedata.normalize("NFKC", token.string)
                findings.append(
                    Finding(
                        "non-ascii-identifier",
                        f"identifier {token.string!r} is not ASCII (Python reads it as {normal!r})",
                        token.start[0],
                        True,
                    )
                )
    except (tokenize.TokenError, SyntaxError):
        pass  # ast.parse has already accepted the code; the tokenizer disagreeing adds nothing
    return findings


# --------------------------------------------------------------------------------------------------
# Bandit and ruff
# --------------------------------------------------------------------------------------------------

_UNAVAILABLE_RULES = frozenset({"bandit-unavailable", "lint-unavailable"})


def _tool_command(name: str) -> list[str] | None:
    """The tool installed next to this interpreter (the venv's bin/), else `python -m tool`."""
    executable = Path(sys.executable).with_name(name)
    if executable.exists():
        return [str(executable)]
    if importlib.util.find_spec(name) is not None:
        return [sys.executable, "-m", name]
    return None


def _run_tool(command: list[str], code: str) -> str:
    # A fixed argv; the code goes in on stdin and the tools only parse it.
    completed = subprocess.run(
        command,
        input=code,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    return completed.stdout


def _run_bandit(code: str) -> list[Finding]:
    command = _tool_command("bandit")
    if command is None:
        message = "bandit is not installed; only the allowlist judged this code"
        return [Finding("bandit-unavailable", message, None, False)]
    try:
        report = json.loads(_run_tool([*command, "-q", "--ignore-nosec", "-f", "json", "-"], code))
        results = report["results"]
        errors = report.get("errors") or []
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as error:
        return [Finding("bandit-unavailable", f"bandit could not run: {error}", None, False)]
    findings: list[Finding] = []
    if errors:
        findings.append(Finding("bandit-unavailable", f"bandit reported errors: {errors}", None, False))
    for result in results:
        test_id = str(result.get("test_id", "B000"))
        if test_id == "B101":
            continue  # assert is how pytest tests assert
        severity = str(result.get("issue_severity", "")).upper()
        findings.append(
            Finding(
                f"bandit:{test_id}",
                f"{result.get('issue_text', '')} (severity {severity.lower()})",
                result.get("line_number"),
                severity in {"MEDIUM", "HIGH"},
            )
        )
    return findings


def _run_ruff(code: str) -> list[Finding]:
    command = _tool_command("ruff")
    if command is None:
        return [Finding("lint-unavailable", "ruff is not installed; the code was not linted", None, False)]
    argv = [*command, "check", "--output-format", "json", "--no-cache", "--isolated", "--select", "E,F,W,B,UP"]
    try:
        items = json.loads(_run_tool([*argv, "--stdin-filename", "generated.py", "-"], code) or "[]")
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        return [Finding("lint-unavailable", f"ruff could not run: {error}", None, False)]
    findings: list[Finding] = []
    for item in items if isinstance(items, list) else []:
        location = item.get("location") or {}
        findings.append(
            Finding(f"lint:{item.get('code') or 'syntax'}", str(item.get("message", "")), location.get("row"), False)
        )
    return findings


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def _result(findings: list[Finding]) -> ScreenResult:
    unique = list(dict.fromkeys(findings))
    unique.sort(key=lambda f: (not f.blocking, f.line or 0, f.rule))
    passed = not any(f.blocking for f in unique)
    if not passed:
        score = 0.0
    else:
        penalised = sum(1 for f in unique if f.rule not in _UNAVAILABLE_RULES)
        score = round(max(LINT_SCORE_FLOOR, 1.0 - LINT_PENALTY * penalised), 4)
    return ScreenResult(passed=passed, score=score, findings=unique)


def _screen_ast(code: str) -> list[Finding]:
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
        facts = _collect_facts(tree)
        try:
            _Screen(facts, tree, table).visit(tree)
        except RecursionError:
            facts.findings.append(Finding("too-complex", "the code is nested too deeply to analyse", None, True))
    return _source_findings(code) + facts.findings


def screen_code(code: str, *, use_bandit: bool = True, use_lint: bool = True) -> ScreenResult:
    """Judge generated code without running it. Blocking findings reject it; lint findings only lower
    the score."""
    if len(code) > MAX_CODE_CHARS:
        return _result([Finding("too-large", f"code longer than {MAX_CODE_CHARS} characters", None, True)])
    findings = _screen_ast(code)
    if any(f.rule in {"syntax-error", "too-complex"} for f in findings):
        return _result(findings)
    if use_bandit:
        findings += _run_bandit(code)
    if use_lint:
        findings += _run_ruff(code)
    return _result(findings)
