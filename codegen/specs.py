"""Reading an OpenAPI document someone sent, without letting the document size the server's memory.

Limits: CODEGEN_SPEC_MAX_BYTES on the text, CODEGEN_SPEC_MAX_DEPTH on nesting (JSON or YAML). YAML is read
as plain data only: aliases (`*name`, the "billion laughs" expansion) are refused outright, and so is every
tag beyond mappings, sequences, strings, numbers, booleans and null; dates stay the strings they were
written as. The document is stored as it was sent (the text), never in an expanded form."""

from __future__ import annotations

import json
from typing import Any

import yaml
from django.conf import settings

from orchestrator.errors import ServiceError
from orchestrator.text import unstorable_reason


class SpecError(ServiceError):
    pass


class _PlainDataLoader(yaml.SafeLoader):
    """SafeLoader without aliases and without the non-JSON types (timestamps, binary, sets, ordered maps)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise SpecError(f"The YAML spec uses an alias (line {mark.line + 1}): aliases are not accepted.")
        depth = getattr(self, "_depth", 0) + 1
        if depth > settings.CODEGEN_SPEC_MAX_DEPTH:
            raise SpecError(f"The spec nests deeper than {settings.CODEGEN_SPEC_MAX_DEPTH} levels.")
        self._depth = depth
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth - 1


def _as_written(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)  # type: ignore[return-value]


def _refuse(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise SpecError(f"The YAML spec uses {node.tag!r} (line {node.start_mark.line + 1}): only plain data is accepted.")


_PlainDataLoader.add_constructor("tag:yaml.org,2002:timestamp", _as_written)
for _tag in ("binary", "set", "omap", "pairs"):
    _PlainDataLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)
_PlainDataLoader.add_constructor(None, _refuse)  # any other explicit tag (!foo, !!python/...)


def _depth_of(document: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (a hostile document must not hit the stack)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _parse_text(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise SpecError(f"The spec nests deeper than {settings.CODEGEN_SPEC_MAX_DEPTH} levels.") from None
    except ValueError:
        pass
    try:
        return yaml.load(text, Loader=_PlainDataLoader)  # noqa: S506 - a SafeLoader subclass, stricter still
    except yaml.YAMLError as exc:
        raise SpecError(f"The spec is neither JSON nor YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise SpecError(f"The spec nests deeper than {settings.CODEGEN_SPEC_MAX_DEPTH} levels.") from None


def spec_text_of(*, raw: object) -> str:
    """The document as it will be stored: text as sent, or an object (from a JSON body) as JSON text."""
    if isinstance(raw, str):
        text = raw
    elif isinstance(raw, dict):
        text = json.dumps(raw, ensure_ascii=False)
    else:
        raise SpecError("The spec must be an OpenAPI document: an object, or JSON or YAML text.")
    if not text.strip():
        raise SpecError("The spec is empty.")
    if reason := unstorable_reason(text):
        raise SpecError(f"The spec contains {reason}.")
    size = len(text.encode())
    if size > settings.CODEGEN_SPEC_MAX_BYTES:
        raise SpecError(f"The spec is {size} bytes; at most {settings.CODEGEN_SPEC_MAX_BYTES} are accepted.")
    return text


def spec_parse(*, text: str) -> dict[str, Any]:
    """The OpenAPI document in `text` (JSON or YAML), checked for shape and limits."""
    document = _parse_text(text)
    if _depth_of(document) > settings.CODEGEN_SPEC_MAX_DEPTH:
        raise SpecError(f"The spec nests deeper than {settings.CODEGEN_SPEC_MAX_DEPTH} levels.")
    if not isinstance(document, dict) or not ("openapi" in document or "swagger" in document):
        raise SpecError("The spec is not an OpenAPI document (no 'openapi' or 'swagger' field).")
    if not isinstance(document.get("paths"), dict) or not document["paths"]:
        raise SpecError("The OpenAPI document has no paths to test.")
    return document
