"""The answers every operation can give besides its own, written into the OpenAPI document so that it
lists every status the API really sends: 422 (ninja's validation of parameters and bodies) everywhere, 400
where a body that is not JSON can be sent, 401 where a token or session is needed."""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

VALIDATION_ERROR = {
    "description": "Invalid parameters or body: one entry per problem",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["detail"],
                "properties": {"detail": {"type": "array", "items": {"type": "object"}}},
            }
        }
    },
}
_DETAIL = {
    "application/json": {
        "schema": {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
    }
}
UNAUTHORIZED = {"description": "No valid API token or session", "content": _DETAIL}
UNPARSABLE = {"description": "The body is not JSON, or not what this operation takes", "content": _DETAIL}


class DocumentedErrorsAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> OpenAPISchema:
        schema = super().get_openapi_schema(**kwargs)
        for item in schema.get("paths", {}).values():
            for method in METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict):
                    continue
                responses = operation.setdefault("responses", {})
                responses.setdefault(422, VALIDATION_ERROR)
                if "requestBody" in operation:
                    responses.setdefault(400, UNPARSABLE)
                if operation.get("security"):
                    responses.setdefault(401, UNAUTHORIZED)
        return schema
