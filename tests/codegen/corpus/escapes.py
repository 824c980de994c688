"""Escape attempts the screener must reject: each is (program, rules that count as a fitting reason).

The programs are data, never run; they are written as strings so that neither ruff nor pytest treats
them as code of this project.
"""

from textwrap import dedent

IMPORTS = "import-not-allowed"
CALL = "call-not-allowed"
NAME = "name-not-allowed"
DUNDER_NAME = "dunder-name"
DUNDER_ATTR = "dunder-attribute"
ATTR = "attribute-not-allowed"


def _case(code: str, *rules: str) -> tuple[str, frozenset[str]]:
    return dedent(code).lstrip("\n"), frozenset(rules)


ESCAPES: dict[str, tuple[str, frozenset[str]]] = {
    # ---- modules that reach the OS, the file system, the network or the interpreter --------------
    "import_os_system": _case('import os\nos.system("id")\n', IMPORTS),
    "import_subprocess": _case('import subprocess\nsubprocess.run(["cat", "/etc/passwd"])\n', IMPORTS),
    "from_os_import_system_as_alias": _case('from os import system as s\ns("id")\n', IMPORTS),
    "import_builtins_as_alias": _case('import builtins as b\nb.eval("1 + 1")\n', IMPORTS),
    "import_sys_modules": _case('import sys\nsys.modules["os"].system("id")\n', IMPORTS),
    "import_socket": _case('import socket\nsocket.create_connection(("10.0.0.1", 4444))\n', IMPORTS),
    "import_ctypes": _case('import ctypes\nctypes.CDLL(None).system(b"id")\n', IMPORTS),
    "importlib_import_module": _case('import importlib\nimportlib.import_module("os").system("id")\n', IMPORTS),
    "pickle_loads": _case("import pickle\npickle.loads(b\"cos\\nsystem\\n(S'id'\\ntR.\")\n", IMPORTS),
    "io_open": _case('import io\nprint(io.open("/etc/passwd").read())\n', IMPORTS),
    "codecs_open": _case('import codecs\nprint(codecs.open("/etc/passwd").read())\n', IMPORTS),
    "pathlib_read": _case('from pathlib import Path\nprint(Path("/etc/passwd").read_text())\n', IMPORTS),
    "urllib_urlopen": _case('from urllib.request import urlopen\nurlopen("file:///etc/passwd")\n', IMPORTS),
    "requests_get": _case('import requests\nrequests.get("http://169.254.169.254/latest/meta-data/")\n', IMPORTS),
    "pkgutil_resolve_name": _case('import pkgutil\npkgutil.resolve_name("os:system")("id")\n', IMPORTS),
    "runpy_run_module": _case('import runpy\nrunpy.run_module("http.server")\n', IMPORTS),
    "import_os_path_submodule": _case('import os.path\nprint(os.path.expanduser("~"))\n', IMPORTS),
    "http_client_submodule": _case('import http.client\nhttp.client.HTTPConnection("evil.example")\n', IMPORTS),
    "json_tool_submodule": _case("from json import tool\ntool.main()\n", IMPORTS),
    "asyncio_subprocess_submodule": _case("from asyncio import subprocess\n", IMPORTS),
    "uvicorn_server": _case('import uvicorn\nuvicorn.run("app:app", host="0.0.0.0")\n', IMPORTS),
    "relative_import": _case("from . import settings\nprint(settings.SECRET_KEY)\n", IMPORTS),
    "star_import": _case("from math import *\nprint(pi)\n", "star-import"),
    "future_barry": _case("from __future__ import barry_as_FLUFL\n", IMPORTS),
    "contextlib_chdir": _case('import contextlib\nwith contextlib.chdir("/"):\n    pass\n', ATTR, IMPORTS),
    "typing_forwardref": _case('from typing import ForwardRef\nForwardRef("x")\n', IMPORTS),
    # ---- modules reached through attributes of allowed modules ------------------------------------
    "typing_sys_modules": _case('import typing\ntyping.sys.modules["os"].system("id")\n', ATTR),
    "random_private_os": _case('import random\nrandom._os.system("id")\n', ATTR),
    "enum_renamed_builtins": _case('import enum\nenum.bltns.open("/etc/passwd")\n', ATTR),
    "from_typing_import_sys": _case("from typing import sys\nsys.exit(1)\n", IMPORTS),
    "dataclasses_inspect_getmembers": _case(
        "import dataclasses\ndef f():\n    pass\nmembers = dict(dataclasses.inspect.getmembers(f))\n", ATTR
    ),
    "typing_types_codetype": _case("import typing\nmake = typing.types.CodeType\n", ATTR),
    "collections_private_sys": _case("import collections\nprint(collections._sys.modules)\n", ATTR),
    "alias_variable_to_module": _case("import typing\nm = typing\nm.sys.exit(3)\n", ATTR),
    "function_local_import_member": _case('def go():\n    import contextlib\n    return contextlib.chdir("/")\n', ATTR),
    # ---- forbidden builtins, called or aliased --------------------------------------------------
    "eval_call": _case('print(eval("1 + 1"))\n', CALL),
    "exec_call": _case('exec("import os")\n', CALL),
    "compile_exec_string": _case('code = compile("exec(\'import os\')", "<x>", "exec")\n', CALL),
    "dunder_import_call": _case('__import__("os").system("id")\n', DUNDER_NAME),
    "open_call": _case('print(open("/etc/passwd").read())\n', CALL),
    "breakpoint_call": _case("breakpoint()\n", CALL),
    "help_call": _case("help()\n", CALL),
    "license_call": _case("license()\n", CALL),
    "input_call": _case("name = input()\n", CALL),
    "exit_call": _case("exit(0)\n", CALL),
    "quit_alias": _case("stop = quit\nstop()\n", NAME),
    "memoryview_call": _case('view = memoryview(b"abc")\n', CALL),
    "getattr_builtins_concat": _case('getattr(__builtins__, "ev" + "al")("1")\n', CALL, DUNDER_NAME),
    "globals_subscript": _case('globals()["__builtins__"]["eval"]("1")\n', CALL),
    "vars_object": _case("print(vars(object))\n", CALL),
    "locals_call": _case("print(locals())\n", CALL),
    "dir_call": _case("print(dir(object))\n", CALL),
    "setattr_class": _case('class A:\n    pass\nsetattr(A(), "__class__", int)\n', CALL),
    "eval_alias": _case('f = eval\nf("1 + 1")\n', NAME),
    "eval_default_argument": _case('def run(g=eval):\n    return g("1 + 1")\n', NAME),
    "eval_in_comprehension": _case('results = [eval(x) for x in ["1", "2"]]\n', CALL),
    "walrus_alias": _case('(e := eval)("1")\n', NAME),
    "del_then_builtin_fallback": _case('eval = print\ndel eval\neval("1")\n', CALL),
    "getattr_lambda_default": _case('(lambda g=getattr: g(1, "__class__"))()\n', NAME),
    "undefined_name_call": _case('os_system("id")\n', CALL),
    "type_three_arguments": _case('X = type("X", (), {"run": lambda self: 1})\n', CALL),
    # ---- dunder names -----------------------------------------------------------------------
    "builtins_subscript": _case('__builtins__["eval"]("1")\n', DUNDER_NAME),
    "assign_builtins": _case("__builtins__ = {}\n", DUNDER_NAME),
    "global_builtins_rebind": _case("def f():\n    global __builtins__\n    __builtins__ = None\n", DUNDER_NAME),
    "import_in_default_argument": _case('def f(m=__import__("os")):\n    return m\n', DUNDER_NAME),
    "import_in_comprehension": _case('mods = [__import__(m) for m in ["os"]]\n', DUNDER_NAME),
    "import_in_class_body": _case('class A:\n    os = __import__("os")\n', DUNDER_NAME),
    "class_cell_name": _case(
        "class A:\n    def f(self):\n        return __class__.__subclasses__()\n", DUNDER_NAME, DUNDER_ATTR
    ),
    "loader_spec": _case("print(__loader__, __spec__)\n", DUNDER_NAME),
    # ---- class-graph and frame walks ------------------------------------------------------------
    "tuple_class_bases_subclasses": _case("().__class__.__bases__[0].__subclasses__()\n", DUNDER_ATTR),
    "list_mro_walk": _case("[].__class__.__mro__[1].__subclasses__()\n", DUNDER_ATTR),
    "object_subclasses": _case("print(object.__subclasses__())\n", DUNDER_ATTR),
    "type_of_subclasses": _case("print(type(1).__base__.__subclasses__())\n", DUNDER_ATTR),
    "int_mro_method": _case("print(int.mro()[1])\n", ATTR),
    "lambda_subclasses": _case("(lambda: ().__class__.__base__.__subclasses__())()\n", DUNDER_ATTR),
    "function_globals": _case('def f():\n    pass\nf.__globals__["__builtins__"]\n', DUNDER_ATTR),
    "code_replacement": _case("def f():\n    pass\ndef g():\n    pass\nf.__code__ = g.__code__\n", DUNDER_ATTR),
    "generator_frame_walk": _case("def gen():\n    yield 1\ng = gen()\nprint(g.gi_frame.f_back.f_globals)\n", ATTR),
    "coroutine_frame": _case("async def c():\n    pass\nprint(c().cr_frame.f_globals)\n", ATTR),
    "traceback_frame": _case(
        "try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n    print(exc.__traceback__.tb_frame.f_globals)\n",
        DUNDER_ATTR,
        ATTR,
    ),
    "builtin_method_self": _case('print.__self__.open("/etc/passwd")\n', DUNDER_ATTR),
    "instance_dict": _case('class A:\n    pass\nA().__dict__["x"] = 1\n', DUNDER_ATTR),
    "closure_cells": _case(
        "def outer():\n    x = 1\n    def inner():\n        return x\n    return inner\n"
        "print(outer().__closure__[0].cell_contents)\n",
        DUNDER_ATTR,
        ATTR,
    ),
    "match_class_pattern_attribute": _case(
        "def f():\n    pass\nmatch f:\n    case object(__globals__=g):\n        print(g)\n", DUNDER_ATTR
    ),
    "assign_module_attribute": _case("import json\njson.loads = lambda s: s\n", "module-attribute-assignment"),
    # ---- dangerous definitions ---------------------------------------------------------------
    "finalizer": _case('class A:\n    def __del__(self):\n        print("runs at shutdown")\n', "dunder-definition"),
    "reduce_copy_gadget": _case(
        'import copy\nclass A:\n    def __reduce__(self):\n        return (print, ("x",))\ncopy.copy(A())\n',
        "dunder-definition",
    ),
    # ---- decorators and metaclasses ----------------------------------------------------------
    "decorator_exec": _case("@exec\ndef f():\n    pass\n", CALL),
    "decorator_import_system": _case('@__import__("os").system\ndef f():\n    pass\n', DUNDER_NAME),
    "class_decorator_eval": _case("@eval\nclass A:\n    pass\n", CALL),
    "decorator_undefined": _case("@smuggled\ndef f():\n    pass\n", CALL),
    "metaclass_lambda": _case("class A(metaclass=lambda *a: print(a)):\n    pass\n", "metaclass-not-allowed"),
    "metaclass_builtin_function": _case("class A(metaclass=print):\n    pass\n", "metaclass-not-allowed"),
    # ---- string-named attributes ---------------------------------------------------------------
    "format_class_walk": _case('print("{0.__class__.__bases__}".format(1))\n', "format-string"),
    "format_map_globals": _case('def f():\n    pass\nprint("{f.__globals__}".format_map({"f": f}))\n', "format-string"),
    "format_nonliteral_template": _case(
        'parts = ["{0.", "__class__", "}"]\nprint("".join(parts).format(1))\n', "format-string", DUNDER_NAME
    ),
    "format_nested_spec_field": _case('print("{0:{1.__class__}}".format(1, 2))\n', "format-string"),
    "string_formatter_get_field": _case(
        'import string\nstring.Formatter().get_field("0.__globals__", [print], {})\n', ATTR, IMPORTS
    ),
    "operator_attrgetter_dunder": _case(
        'import operator\ndef f():\n    pass\nprint(operator.attrgetter("__globals__")(f))\n', "string-attribute"
    ),
    "methodcaller_computed": _case(
        'from operator import methodcaller\nname = "mro"\nmethodcaller(name)(int)\n', "string-attribute"
    ),
    "object_setattr_computed": _case(
        'class A:\n    pass\nname = "__class__"\nobject.__setattr__(A(), name, int)\n', "string-attribute", DUNDER_NAME
    ),
    "super_getattribute_computed": _case(
        "class A:\n    def peek(self, name):\n        return super().__getattribute__(name)\n", "string-attribute"
    ),
    "getattribute_on_other_object": _case(
        'def f():\n    pass\nprint(f.__getattribute__("__globals__"))\n', "string-attribute"
    ),
    # ---- strings that some library evaluates as code --------------------------------------------
    "forward_ref_annotation_payload": _case(
        "import typing\ndef f(x: \"__import__('os').system('id')\"):\n    pass\ntyping.get_type_hints(f)\n",
        DUNDER_NAME,
    ),
    "forward_ref_concatenated": _case(
        "def f(x: \"__imp\" + \"ort__('os').system('id')\"):\n    pass\n", "annotation-not-static", DUNDER_NAME
    ),
    "forward_ref_runtime_string": _case(
        "payload = ''.join(chr(c) for c in [111, 115])\ndef f(x: payload):\n    pass\n", "annotation-not-static"
    ),
    "typevar_bound_payload": _case(
        'from typing import TypeVar\nT = TypeVar("T", bound="__import__(\'os\').getcwd()")\n', DUNDER_NAME
    ),
    "pydantic_create_model_runtime_type": _case(
        "from pydantic import create_model\ntp = str(42)\nM = create_model('M', x=(tp, ...))\n",
        "annotation-not-static",
    ),
    "get_type_hints_namespace": _case(
        "import typing\ndef f(x: 'X'):\n    pass\ntyping.get_type_hints(f, localns={'X': str(1)})\n",
        "keyword-not-allowed",
    ),
    "pydantic_private_namespace": _case(
        "from pydantic import BaseModel\nclass M(BaseModel):\n    x: int\nM.model_rebuild(_types_namespace={})\n",
        "keyword-not-allowed",
    ),
    "doctest_payload": _case(
        'def add(a, b):\n    """Add.\n\n    >>> __import__("os").system("id")\n    0\n    """\n    return a + b\n',
        DUNDER_NAME,
    ),
    "pytest_skipif_string_condition": _case(
        "import pytest\n@pytest.mark.skipif(\"os.system('id')\")\ndef test_x():\n    pass\n", CALL, NAME
    ),
    # ---- library features that hand out files, processes, sockets or imports -----------------------
    "pydantic_import_string": _case(
        "from pydantic import BaseModel, ImportString\nclass M(BaseModel):\n    target: ImportString\n"
        'M(target="os").target.system("id")\n',
        IMPORTS,
    ),
    "pydantic_file_path": _case(
        "from pydantic import BaseModel, FilePath\nclass M(BaseModel):\n    p: FilePath\n"
        'print(M(p="/etc/passwd").p.read_text())\n',
        IMPORTS,
    ),
    "pydantic_v1": _case("from pydantic.v1 import BaseModel\n", IMPORTS),
    "pydantic_parse_file": _case(
        'from pydantic import BaseModel\nclass M(BaseModel):\n    x: int\nM.parse_file("/etc/passwd")\n', ATTR
    ),
    "fastapi_static_files": _case(
        "from fastapi import FastAPI\nfrom fastapi.staticfiles import StaticFiles\napp = FastAPI()\n"
        'app.mount("/", StaticFiles(directory="/"))\n',
        IMPORTS,
    ),
    "fastapi_file_response": _case(
        "from fastapi import FastAPI\nfrom fastapi.responses import FileResponse\napp = FastAPI()\n"
        '@app.get("/f")\ndef f(path: str):\n    return FileResponse(path)\n',
        IMPORTS,
    ),
    "starlette_config_env": _case('from starlette.config import Config\nConfig(".env")\n', IMPORTS),
    "httpx_docker_socket": _case(
        'import httpx\ntransport = httpx.HTTPTransport(uds="/var/run/docker.sock")\n', "keyword-not-allowed"
    ),
    "asyncio_create_subprocess": _case(
        'import asyncio\nasync def main():\n    await asyncio.create_subprocess_shell("id")\n', ATTR
    ),
    "event_loop_subprocess": _case(
        "import asyncio\nasync def main():\n    loop = asyncio.get_running_loop()\n"
        '    await loop.subprocess_shell(None, "id")\n',
        ATTR,
    ),
    "asyncio_open_connection": _case(
        'import asyncio\nasync def main():\n    await asyncio.open_connection("10.0.0.1", 25)\n', ATTR
    ),
    "uuid_getnode": _case("import uuid\nprint(uuid.getnode())\n", ATTR),
    # ---- pytest and unittest ------------------------------------------------------------------
    "pytest_importorskip": _case('import pytest\nos = pytest.importorskip("os")\n', ATTR),
    "pytest_main": _case('import pytest\npytest.main(["-p", "evil"])\n', ATTR),
    "pytest_tmp_path_fixture": _case(
        'def test_write(tmp_path):\n    (tmp_path / "x").write_text("data")\n', "fixture-not-allowed"
    ),
    "pytest_monkeypatch_fixture": _case(
        'def test_patch(monkeypatch):\n    monkeypatch.setattr("os.system", print)\n', "fixture-not-allowed"
    ),
    "pytest_getfixturevalue": _case(
        'def test_x(request):\n    path = request.getfixturevalue("tmp_path")\n', "fixture-not-allowed", ATTR
    ),
    "pytest_request_config": _case(
        "import pytest\n@pytest.fixture\ndef root(request):\n    return request.config.rootpath\n",
        "fixture-not-allowed",
    ),
    "pytest_hook": _case("def pytest_configure(config):\n    config.option.verbose = 2\n", "definition-not-allowed"),
    "pytest_plugins": _case('pytest_plugins = ["evil_plugin"]\n', "definition-not-allowed"),
    "pytest_excinfo_frame_eval": _case(
        "import pytest\ndef test_x():\n    with pytest.raises(ZeroDivisionError) as excinfo:\n        1 / 0\n"
        '    excinfo.traceback[-1].frame.eval("print(1)")\n',
        ATTR,
    ),
    "mock_patch_string_target": _case(
        'from unittest import mock\nwith mock.patch("os.system") as fake:\n    pass\n', IMPORTS
    ),
    "mock_patch_getter": _case('from unittest.mock import patch\nos_module = patch("os.system").getter()\n', IMPORTS),
    "mock_patch_object_dunder": _case(
        'from unittest.mock import patch\ndef f():\n    pass\nprint(patch.object(f, "__globals__").get_original())\n',
        "string-attribute",
    ),
    "mock_patch_dict_environ": _case(
        'from unittest.mock import patch\nwith patch.dict("os.environ", {"DEBUG": "1"}):\n    pass\n', IMPORTS
    ),
    "mocker_patch_string": _case('def test_x(mocker):\n    mocker.patch("subprocess.run")\n', IMPORTS),
    "unittest_main_argv": _case('import unittest\nunittest.main(argv=["x", "os"])\n', CALL),
    "unittest_loader_by_name": _case(
        'import unittest\nunittest.TestLoader().loadTestsFromName("code.interact")\n', ATTR
    ),
    # ---- indirections around the checked calls ---------------------------------------------------
    "sink_called_through_dunder_call": _case(
        "from unittest.mock import patch\ndef f():\n    pass\nname = str(1)\npatch.object.__call__(f, name)\n",
        CALL,
        DUNDER_ATTR,
    ),
    "sink_aliased": _case("import operator\nget = operator.attrgetter\nprint(get(str(1))(print))\n", CALL),
    "reinit_library_object": _case(
        "from pydantic import TypeAdapter\nadapter = TypeAdapter(int)\nadapter.__init__(str(1))\n", DUNDER_ATTR
    ),
    "type_new_dynamic_class": _case('X = type.__new__(type, "X", (), {})\n', DUNDER_ATTR),
    "explicit_getitem_generic": _case(
        "from typing import Optional\nhint = str(1)\nT = Optional.__getitem__(hint)\n", "annotation-not-static"
    ),
    "pydantic_root_model_runtime_type": _case(
        "from pydantic import RootModel\nhint = str(1)\nM = RootModel[hint]\n", "annotation-not-static"
    ),
    "pydantic_computed_alias_from_attributes": _case(
        "from pydantic import BaseModel, ConfigDict, Field\nname = str(1)\nclass Spy(BaseModel):\n"
        "    model_config = ConfigDict(from_attributes=True)\n    g: dict = Field(validation_alias=name)\n",
        "string-attribute",
    ),
    "pydantic_alias_generator_dunders": _case(
        "from pydantic import BaseModel, ConfigDict\nclass Spy(BaseModel):\n"
        "    model_config = ConfigDict(from_attributes=True, alias_generator=lambda n: '__' + n + '__')\n"
        "    globals: dict\n",
        "string-attribute",
    ),
    "computed_match_args": _case(
        "name = str(1)\nclass Proxy:\n    __match_args__ = (name,)\n"
        "def peek(x):\n    match x:\n        case Proxy(v):\n            return v\n",
        "string-attribute",
    ),
    "assign_match_args_later": _case("class P:\n    pass\nP.__match_args__ = ('x',)\n", DUNDER_ATTR),
    "fixture_decorator_alias": _case(
        "import pytest\nfx = pytest.fixture\n@fx\ndef root(request):\n    return request.config\n", CALL
    ),
    "fixture_registered_by_call": _case(
        "import pytest\ndef root(request):\n    return request.node\nroot = pytest.fixture(root)\n",
        "fixture-not-allowed",
    ),
    "fixture_lambda": _case(
        "import pytest\nroot = pytest.fixture(lambda request: request.config)\n", "fixture-not-allowed"
    ),
    "module_reached_through_module": _case("import typing\ntyping.contextlib.chdir('/')\n", ATTR),
    # ---- source-level tricks ---------------------------------------------------------------------
    "fullwidth_eval": _case('\uff45\uff56\uff41\uff4c("1 + 1")\n', "non-ascii-identifier", CALL),
    "homoglyph_identifier": _case("p\u0430ssword = 1\nprint(p\u0430ssword)\n", "non-ascii-identifier"),
    "utf7_coding_cookie": _case(
        '# -*- coding: utf-7 -*-\nx = "+AAo-import os+AAo-os.system(+ACI-id+ACI-)"\n', "encoding-declaration"
    ),
    "bidi_trojan_source": _case(
        'access = "user"\nif access != "none\u202e \u2066# admin\u2069 \u2066":\n    print("admin")\n',
        "bidi-control-character",
    ),
}
