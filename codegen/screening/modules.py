"""Resolving dotted paths against the module policy: is `a.b.c` a module, an allowed member, or a
module the allowed package merely imported (fastapi.routing.anyio)?

Installed packages are located with importlib's finders, never imported, so no code runs.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from codegen.screening.policy import (
    ALLOWED_DUNDER_ATTRS,
    BLOCKED_ATTRIBUTES,
    BLOCKED_MODULE_NAMES,
    KNOWN_MODULES,
    NOT_ALLOWED_STDLIB,
    OPEN,
    PUBLIC_UNDERSCORE_ATTRS,
    SUNDER,
    ModulePolicy,
)


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def attr_problem(name: str, *, self_base: bool) -> tuple[str, str] | None:
    """The rule an attribute name breaks, whatever the object it is looked up on.

    String sinks (hasattr, attrgetter, format fields) pass raw strings here, which getattr does not
    NFKC-normalise; they are checked in both spellings and non-ASCII is refused outright.
    """
    normal = unicodedata.normalize("NFKC", name)
    if normal != name or not normal.isascii():
        return "non-ascii-identifier", f"attribute name {name!r} is not plain ASCII"
    if is_dunder(normal):
        if normal in ALLOWED_DUNDER_ATTRS:
            return None
        return "dunder-attribute", f"dunder attribute {normal!r} is not allowed"
    stripped = normal.lstrip("_")
    if (
        normal in BLOCKED_ATTRIBUTES
        or normal in BLOCKED_MODULE_NAMES
        or (normal.startswith("_") and stripped in BLOCKED_MODULE_NAMES)
    ):
        return "attribute-not-allowed", f"attribute {normal!r} reaches interpreter, OS or module internals"
    if normal.startswith("_") and not self_base and not SUNDER.match(normal) and normal not in PUBLIC_UNDERSCORE_ATTRS:
        return "private-attribute", f"private attribute {normal!r} of an object this code does not own"
    return None


@functools.lru_cache(maxsize=64)
def package_dirs(top: str) -> tuple[Path, ...]:
    """Where an installed package's files are, found without importing (running) it."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return ()
    locations = spec.submodule_search_locations if spec is not None else None
    return tuple(Path(location) for location in locations or ())


@functools.lru_cache(maxsize=4096)
def is_own_submodule(path: str, member: str) -> bool:
    """Whether `path.member` is a submodule of a third-party package (fastapi.requests,
    fastapi.middleware.gzip) rather than a module that package imported under that name."""
    top, _, rest = path.partition(".")
    policy = KNOWN_MODULES.get(top)
    if policy is None or policy.submodules is not None:
        return False  # stdlib packages list their submodules explicitly
    directories = package_dirs(top)
    if not directories:
        return path == top and member in policy.own_stdlib_named  # not installed here: the static list
    for base in directories:
        directory = base.joinpath(*rest.split(".")) if rest else base
        if (directory / f"{member}.py").is_file() or (directory / member / "__init__.py").is_file():
            return True
        if any(directory.glob(f"{member}.*.so")) or any(directory.glob(f"{member}.*.pyd")):
            return True
    return False


def path_is_module(path: str, modules: Mapping[str, ModulePolicy]) -> bool:
    """Whether a dotted path rooted at an import names a module rather than some object in one."""
    top, _, rest = path.partition(".")
    if not rest:
        return True
    policy = modules.get(top)
    if policy is None:
        return False
    if policy.submodules is None:
        if package_dirs(top):
            parts = path.split(".")
            return all(is_own_submodule(".".join(parts[:i]), parts[i]) for i in range(1, len(parts)))
        # Not installed here: module names are lowercase, classes and constants are not.
        return rest.islower()
    return rest in policy.submodules


# Members that share an allowed module's name without being that module.
CLASSES_NAMED_LIKE_MODULES = frozenset({"datetime.time"})


@functools.lru_cache(maxsize=2048)
def is_installed_module_name(name: str) -> bool:
    """Whether `name` is an importable top-level module here. Only locates it (no module code runs);
    a bare directory (namespace package, origin None) does not count."""
    if not name.isidentifier():
        return False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


def child_path(path: str, member: str, modules: Mapping[str, ModulePolicy]) -> str:
    top = path.partition(".")[0]
    policy = modules.get(top, OPEN)
    at_top = path == top
    if member == top or f"{path}.{member}" in CLASSES_NAMED_LIKE_MODULES:
        return f"{path}.{member}"  # datetime.datetime, copy.copy: the member, not the module again
    if is_own_submodule(path, member) or (at_top and policy.submodules and member in policy.submodules):
        return f"{path}.{member}"
    # typing.functools is the functools module: re-root so that functools' own policy applies.
    if member in modules and member in sys.stdlib_module_names and path_is_module(path, modules):
        return member
    return f"{path}.{member}"


def member_problem(path: str, member: str, modules: Mapping[str, ModulePolicy]) -> str | None:
    """Why `path.member` is refused, for a path rooted at an allowed import (dunders and private
    names are judged by attr_problem)."""
    top = path.partition(".")[0]
    policy = modules.get(top)
    if policy is None:
        return None
    at_top = path == top
    if member.startswith("_") and not is_dunder(member):
        # Even the names attr_problem lets through on objects (_fields, _value_) are internals here.
        return f"private member {path}.{member}"
    if member in policy.blocked:
        return f"{path}.{member} is not allowed"
    allowed_sub = at_top and bool(policy.submodules) and member in (policy.submodules or ())
    if at_top and policy.members is not None and member not in policy.members and not allowed_sub:
        return f"{member!r} is not an allowed member of {top!r}"
    if not path_is_module(path, modules) or allowed_sub or is_own_submodule(path, member):
        return None
    if member in policy.not_modules:
        return None
    # Third-party modules hold whatever they imported (fastapi.routing.anyio ...); their layout is not
    # listed here, so a lowercase member named like an installed module is taken to be that module.
    leaked_third_party = (
        policy.submodules is None and member not in modules and member.islower() and is_installed_module_name(member)
    )
    if member in NOT_ALLOWED_STDLIB or leaked_third_party:
        return f"{path}.{member} reaches the module {member!r}, which is not allowed"
    return None
