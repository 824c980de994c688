"""The policy data: what screened code may import, call, name and look up.

This is the part that changes most (a new library, a member found to reach the OS), so it holds data
only; the rules that apply it live in `rules.py` and `modules.py`.
"""

from __future__ import annotations

import builtins
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass


def names(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass(frozen=True)
class ModulePolicy:
    """What of an allowed top-level module may be used.

    `members`: None means every public member; otherwise only these names (plus `submodules`).
    `submodules`: None means any submodule (third-party packages whose layout we trust), otherwise
    only these. `blocked`: names refused anywhere in the package, as member or as submodule.
    `own_stdlib_named`: the package's own submodules that happen to share a stdlib module's name
    (pydantic.types), which must not be mistaken for a leaked stdlib module. `not_modules`: members that
    share a stdlib module's name but are functions or classes (sqlalchemy.select).
    """

    members: frozenset[str] | None = None
    submodules: frozenset[str] | None = frozenset()
    blocked: frozenset[str] = frozenset()
    own_stdlib_named: frozenset[str] = frozenset()
    not_modules: frozenset[str] = frozenset()


OPEN = ModulePolicy()

ALLOWED_MODULES: dict[str, ModulePolicy] = {
    # Only `annotations`: the other features are no-ops on 3.11 or (barry_as_FLUFL) change the grammar.
    "__future__": ModulePolicy(members=names("annotations")),
    # ForwardRef turns an arbitrary string into code that typing evaluates with eval().
    "typing": ModulePolicy(blocked=names("ForwardRef")),
    "typing_extensions": ModulePolicy(blocked=names("ForwardRef evaluate_forward_ref")),
    "dataclasses": OPEN,
    "datetime": OPEN,
    # Clock reading and sleeping only: clock_settime/tzset change process or machine state.
    "time": ModulePolicy(
        members=names(
            "time time_ns sleep monotonic monotonic_ns perf_counter perf_counter_ns process_time process_time_ns"
            " gmtime localtime mktime strftime strptime asctime ctime struct_time timezone altzone daylight tzname"
        )
    ),
    # reset_tzpath would point tz lookups at arbitrary directories.
    "zoneinfo": ModulePolicy(members=names("ZoneInfo ZoneInfoNotFoundError available_timezones")),
    "math": OPEN,
    # Pure text and data helpers: no I/O, no process state.
    "unicodedata": OPEN,
    "difflib": OPEN,
    "keyword": OPEN,
    "colorsys": OPEN,
    "struct": OPEN,
    "binascii": OPEN,
    "ipaddress": OPEN,
    "pprint": OPEN,
    # html.parser and html.entities are pure too, but escaping is all handlers need.
    "html": ModulePolicy(members=names("escape unescape")),
    "cmath": OPEN,
    "statistics": OPEN,
    "decimal": OPEN,
    "fractions": OPEN,
    "numbers": OPEN,
    "re": OPEN,
    # json.tool is a command-line program that opens the files named on its command line.
    "json": ModulePolicy(submodules=names("decoder encoder"), blocked=names("tool")),
    "enum": OPEN,
    # uuid1/getnode may spawn ifconfig/ip to find a MAC address (and leak it); the random kinds are pure.
    "uuid": ModulePolicy(
        members=names(
            "UUID uuid3 uuid4 uuid5 NAMESPACE_DNS NAMESPACE_URL NAMESPACE_OID NAMESPACE_X500 SafeUUID"
            " RESERVED_NCS RFC_4122 RESERVED_MICROSOFT RESERVED_FUTURE"
        )
    ),
    "collections": ModulePolicy(submodules=names("abc")),
    "itertools": OPEN,
    "functools": OPEN,
    # attrgetter/methodcaller take attribute names as strings: they are checked like getattr sinks.
    "operator": OPEN,
    # Formatter.get_field resolves "{0.__class__}" style fields, i.e. getattr by string.
    "string": ModulePolicy(blocked=names("Formatter")),
    "textwrap": OPEN,
    "abc": OPEN,
    # contextlib is mostly pure control flow (contextmanager, suppress, ExitStack), but chdir changes the
    # process's working directory and redirect_std* swap interpreter-global streams.
    "contextlib": ModulePolicy(blocked=names("chdir redirect_stdout redirect_stderr")),
    "copy": OPEN,
    "heapq": OPEN,
    "bisect": OPEN,
    "graphlib": OPEN,
    "random": OPEN,
    "secrets": OPEN,
    "hashlib": OPEN,
    "base64": OPEN,
    # http.client/http.server/http.cookiejar are network and file access; the enums and cookie-header
    # parsing (http.cookies, which Starlette re-exports as starlette.requests.http_cookies) are pure.
    "http": ModulePolicy(members=names("HTTPStatus HTTPMethod cookies"), submodules=names("cookies")),
    # TestLoader/main(argv=...) import modules by dotted name and call what they find; see _check_unittest_main.
    "unittest": ModulePolicy(
        members=names(
            "TestCase IsolatedAsyncioTestCase FunctionTestCase TestSuite TextTestRunner TestResult skip skipIf"
            " skipUnless expectedFailure SkipTest main addModuleCleanup mock"
        ),
        submodules=names("mock"),
    ),
    # Task orchestration only: streams, subprocesses and raw sockets stay out (the event loop's own
    # socket/subprocess methods are refused by attribute name, see BLOCKED_ATTRIBUTES).
    "asyncio": ModulePolicy(
        members=names(
            "run gather sleep wait wait_for create_task as_completed shield timeout timeout_at Timeout TaskGroup"
            " Task Future Queue PriorityQueue LifoQueue QueueEmpty QueueFull Lock Event Condition Semaphore"
            " BoundedSemaphore Barrier BrokenBarrierError CancelledError TimeoutError InvalidStateError iscoroutine"
            " iscoroutinefunction isfuture ensure_future current_task all_tasks Runner to_thread FIRST_COMPLETED"
            " FIRST_EXCEPTION ALL_COMPLETED get_event_loop get_running_loop new_event_loop set_event_loop"
        )
    ),
    # v1/deprecated/tools/parse carry parse_file & co (file reads); ImportString imports a module named by
    # *data*; the Path types hand out pathlib objects, i.e. the file system.
    "pydantic": ModulePolicy(
        submodules=None,
        blocked=names(
            "v1 deprecated tools parse env_settings ImportString FilePath DirectoryPath NewPath SocketPath"
            " parse_file_as load_file"
        ),
        own_stdlib_named=names("types dataclasses json typing warnings"),
    ),
    "pydantic_core": ModulePolicy(submodules=None),
    # pydantic's own typing-introspection helpers (pydantic.fields exposes them).
    "typing_inspection": ModulePolicy(submodules=None),
    "annotated_types": OPEN,
    # Static files, FileResponse and templates serve or read arbitrary paths (and Jinja is its own
    # sandbox-escape playground); the CLI runs servers.
    "fastapi": ModulePolicy(
        submodules=None,
        # (v2: the internal pydantic-compat layer, fastapi._compat.v2, re-exported by fastapi.utils)
        blocked=names("staticfiles templating cli StaticFiles FileResponse Jinja2Templates v2"),
        own_stdlib_named=names("types"),
    ),
    "starlette": ModulePolicy(
        submodules=None,
        # (opentelemetry: the tracing middleware hands out the OpenTelemetry SDK's process-global state)
        blocked=names("staticfiles templating config StaticFiles FileResponse Jinja2Templates opentelemetry"),
        own_stdlib_named=names("types"),
    ),
    "httpx": ModulePolicy(submodules=None, blocked=names("main")),
    # The httpx fork Starlette's TestClient is built on (starlette.testclient.httpx is this module).
    "httpx2": ModulePolicy(submodules=None, blocked=names("main")),
    # Test-writing API only. importorskip imports any module, main/Pytester run pytest, MonkeyPatch and
    # TempPathFactory reach the environment and the file system, set_trace opens a debugger.
    "pytest": ModulePolicy(
        members=names(
            "fixture mark raises approx param warns skip fail xfail deprecated_call FixtureRequest CaptureFixture"
            " LogCaptureFixture ExceptionInfo MarkDecorator RaisesExc RaisesGroup WarningsRecorder PytestWarning"
            " Subtests HIDDEN_PARAM"
        )
    ),
}

# What a generated backend project may use beyond ALLOWED_MODULES (besides its own package).
# SQLAlchemy: the ORM and core types. `text`/`literal_column` put raw SQL in strings (SQLite's ATTACH
# creates files); events, plugins, dialect and testing internals reach connections and processes.
BACKEND_EXTRA_MODULES: dict[str, ModulePolicy] = {
    "sqlalchemy": ModulePolicy(
        submodules=None,
        blocked=names(
            "text literal_column event events ext plugins testing util connectors dialects cyextension log"
            " exec_driver_sql"
        ),
        own_stdlib_named=names("types"),
        not_modules=names("select"),
    ),
}
# Every third-party policy the screener knows, whatever the profile: their layout is fixed, so path
# resolution may be cached across profiles.
KNOWN_MODULES: dict[str, ModulePolicy] = {**ALLOWED_MODULES, **BACKEND_EXTRA_MODULES}


@dataclass(frozen=True)
class Policy:
    """One screening profile: the top-level modules code may import and what of each."""

    modules: Mapping[str, ModulePolicy]


DEFAULT_POLICY = Policy(modules=ALLOWED_MODULES)


def backend_policy(package: str, package_modules: frozenset[str]) -> Policy:
    """The profile for a generated backend: the default allowlist, SQLAlchemy, and the project's own
    package, whose submodules (dotted, relative to it: "routers.items") are exactly the files it has."""
    own = ModulePolicy(submodules=package_modules)
    return Policy(modules={**ALLOWED_MODULES, **BACKEND_EXTRA_MODULES, package: own})


# Modules that must not be reached through an attribute of anything, whatever the receiver. The names
# are rare as ordinary attribute names, so checking them everywhere (and with leading underscores, as
# random._os or collections._sys) costs little and closes `typing.sys.modules[...]` style walks.
BLOCKED_MODULE_NAMES = names(
    "os sys builtins subprocess posixsubprocess importlib frozen_importlib frozen_importlib_external ctypes"
    " pickle cpickle marshal posix nt winapi codecs pkgutil inspect shutil pty gc runpy zipimport tempfile"
    " pathlib multiprocessing threading webbrowser sqlite3 shelve socket socketserver io mmap urllib requests"
    " ftplib smtplib telnetlib xmlrpc pdb bdb pydoc linecache tracemalloc sysconfig sitebuiltins uvicorn"
    # third-party modules that FastAPI/Starlette/httpx import and that spawn processes, open files or
    # sockets, render templates or read .env files (fastapi.routing.anyio.run_process ...)
    " anyio trio httpcore jinja2 dotenv watchfiles python_multipart email_validator"
)

BLOCKED_ATTRIBUTES = names(
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
ARITHMETIC = "add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor or"
ALLOWED_DUNDER_ATTRS = names(
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
    | names(
        "__set_name__ __class_getitem__ __get__ __set__ __delete__ __getattr__ __getattribute__ __setattr__"
        " __delattr__ __dir__ __sizeof__ __instancecheck__ __subclasscheck__ __subclasshook__ __prepare__"
        " __bytes__ __complex__ __trunc__ __floor__ __ceil__ __length_hint__ __reversed__ __await__ __pos__"
        " __invert__ __bool__ __call__"
        # SQLAlchemy's declarative mapping reads the table name from the class (a string, screened as one);
        # __table_args__ stays out: it carries CheckConstraint and other raw SQL.
        " __tablename__"
    )
    | frozenset(f"__{prefix}{op}__" for op in ARITHMETIC.split() for prefix in ("", "r", "i"))
)

# Bare dunder names usable anywhere. __name__ is for `if __name__ == "__main__"`; __builtins__,
# __loader__, __spec__, __file__, __class__ (the implicit cell) are refused.
ALLOWED_DUNDER_NAMES = names("__name__ __doc__ __all__ __version__ __author__ __debug__")
# In data strings: also the names such strings legitimately mention.
STRING_DUNDER_NAMES = ALLOWED_DUNDER_NAMES | ALLOWED_DUNDER_ATTRS | names("__main__ __weakref__")
# pydantic.create_model takes its options as dunder keywords.
ALLOWED_DUNDER_KEYWORDS = names("__base__ __config__ __module__ __validators__ __doc__ __cls_kwargs__")
# uds= opens a Unix socket (docker.sock ...); the namespace keywords feed names into forward-ref eval.
BLOCKED_KEYWORDS = names("uds globalns localns globals locals eval_str")

# namedtuple's public API is spelled with underscores.
PUBLIC_UNDERSCORE_ATTRS = names("_replace _asdict _fields _field_defaults _make")
SUNDER = re.compile(r"^_[a-z][a-z0-9]*(?:_[a-z0-9]+)*_$")

# Builtins that may be called. Exception classes are added below from the builtins module itself.
ALLOWED_BUILTINS_BASE = names(
    "abs aiter all anext any ascii bin bool bytearray bytes callable chr classmethod complex dict divmod"
    " enumerate filter float format frozenset hasattr hash hex id int isinstance issubclass iter len list map"
    " max min next object oct ord pow print property range repr reversed round set slice sorted staticmethod"
    " str sum super tuple type zip"
)
ALLOWED_BUILTINS = ALLOWED_BUILTINS_BASE | frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
)
# Refused as bare names in any position (not only calls), since `f = eval; f(...)` is the same call.
# getattr/setattr/delattr take attribute names as run-time strings; vars/globals/locals/dir expose
# namespaces; help/license/credits/copyright page files through a pager; input/breakpoint/exit/quit
# touch the terminal or the process; memoryview exposes raw buffers.
FORBIDDEN_BUILTINS = names(
    "eval exec compile open breakpoint input getattr setattr delattr globals locals vars dir help memoryview"
    " exit quit license credits copyright __import__ __build_class__"
)

# Names of dangerous modules; inside strings that some library evaluates (pytest's skipif conditions
# see os/sys/platform/config), a bare reference to one is refused.
NOT_ALLOWED_STDLIB = frozenset(sys.stdlib_module_names) - frozenset(ALLOWED_MODULES)

# pytest fixtures that hand out the file system, the environment, the plugin system or the config.
DANGEROUS_FIXTURES = names(
    "tmp_path tmp_path_factory tmpdir tmpdir_factory monkeypatch pytester testdir pytestconfig cache"
    " doctest_namespace record_property record_xml_attribute record_testsuite_property"
)
# `request` is needed for parametrised fixtures; its config/node/getfixturevalue are the way out.
REQUEST_ATTRS = names("param param_index addfinalizer fixturename scope function cls instance applymarker")

# Dunder attributes that may be assigned: decorators copy names and docs. Assigning __match_args__,
# __init__ ... would change what pattern matching or construction looks up, out of the checks' sight.
ASSIGNABLE_DUNDER_ATTRS = names("__doc__ __name__ __qualname__ __module__")

# pydantic reads attributes named by aliases (from_attributes=True does getattr(obj, alias)), so aliases
# must be literals the string checks can see; generators must be pydantic's own case converters.
ALIAS_KEYWORDS = names("alias validation_alias serialization_alias")
ALIAS_GENERATORS = names("to_camel to_pascal to_snake")

# Constructor hooks: fine on super()/self/cls, but `adapter.__init__(other_type)` re-runs a library
# object's constructor on arguments that never went through the call checks.
CONSTRUCTOR_DUNDERS = names("__init__ __new__ __post_init__ __init_subclass__")
SELF_NAMES = names("self cls mcs metacls")

# Dunder methods that read or write an attribute named by a string argument.
STRING_NAME_DUNDERS = names("__getattribute__ __getattr__ __setattr__ __delattr__")

TYPE_FACTORY_NAMES = names(
    "TypeVar ParamSpec TypeVarTuple NewType NamedTuple TypedDict namedtuple make_dataclass create_model"
    " TypeAliasType Enum IntEnum StrEnum Flag IntFlag"
)
BUILTIN_GENERICS = names("list dict set frozenset tuple type")

# Callables whose arguments get special checks (literal attribute names, literal import targets,
# static types). Referring to them other than by calling them would let an alias skip those checks.
SINK_QUALNAMES = frozenset(
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

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
CODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
FIELD_PART = re.compile(r"\.([^.\[]*)|\[([^\]]*)\]")
