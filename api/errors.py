"""JSON errors in Svix's shape for every failure: {"code", "detail"}; 422 {"detail": [...]}."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_smorest import Api
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "authentication_failed",
    403: "insufficient_access",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
DETAILS = {
    404: "Entity not found",
    405: "Method not allowed",
    413: "Request payload is too large.",
}
INT_DIGITS_LIMIT = "for integer string conversion"  # CPython's message for int("9" * 4301)


class ApiError(Exception):
    """An error with an HTTP status, a machine code and a human detail."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class NotFound(ApiError):
    """404 for a missing object, or another org's object (never 403)."""

    def __init__(self, detail: str = "Entity not found") -> None:
        super().__init__(404, "not_found", detail)


class Forbidden(ApiError):
    """403: the token is valid but may not do this (an app portal token outside its rights)."""

    def __init__(self, detail: str = "Insufficient access for the given operation.") -> None:
        super().__init__(403, "insufficient_access", detail)


class Conflict(ApiError):
    """409 on a uniqueness clash."""

    def __init__(self, detail: str = "A conflict has occurred", code: str = "conflict") -> None:
        super().__init__(409, code, detail)


class BadRequest(ApiError):
    """400 with a specific code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(400, code, detail)


class Unprocessable(Exception):
    """422 in Svix's validation shape."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__(items)
        self.items = items

    @classmethod
    def at(cls, loc: list[str | int], msg: str, type_: str = "value_error") -> Unprocessable:
        """One validation error at a location such as ["body", "url"]."""
        return cls([{"loc": loc, "msg": msg, "type": type_}])


def flatten_messages(messages: Any, loc: list[str | int]) -> list[dict[str, Any]]:
    """Turn marshmallow's nested error dict into Svix's list of {loc, msg, type}."""
    if isinstance(messages, dict):
        items: list[dict[str, Any]] = []
        for key, value in messages.items():
            sub = loc if key == "_schema" else [*loc, key]
            items.extend(flatten_messages(value, sub))
        return items
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [{"loc": loc, "msg": m, "type": "value_error"} for m in messages]
    if isinstance(messages, list):
        return [i for m in messages for i in flatten_messages(m, loc)]
    return [{"loc": loc, "msg": str(messages), "type": "value_error"}]


def error_body(code: str, detail: str) -> dict[str, str]:
    """The {"code", "detail"} body."""
    return {"code": code, "detail": detail}


def _invalid_json(msg: str) -> ResponseReturnValue:
    """422 for a body that is not JSON Herald can parse, as Svix answers malformed JSON."""
    return jsonify(
        {"detail": [{"loc": ["body"], "msg": msg, "type": "value_error.jsondecode"}]}
    ), 422


def document_errors(app: Flask, api: Api) -> None:
    """Initialise the OpenAPI extension with our error bodies instead of flask-smorest's."""
    from serializers.base import HttpErrorOut, HttpValidationErrorOut

    api.ERROR_SCHEMA = HttpErrorOut
    api.init_app(app)
    api.spec.components.response(  # type: ignore[union-attr]
        "UNPROCESSABLE_ENTITY",
        {
            "description": "Unprocessable Entity",
            "content": {"application/json": {"schema": HttpValidationErrorOut}},
        },
        lazy=True,
    )


def register_error_handlers(app: Flask) -> None:
    """JSON for every error, including routing errors and unhandled exceptions."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> ResponseReturnValue:
        return jsonify(error_body(exc.code, exc.detail)), exc.status

    @app.errorhandler(Unprocessable)
    def _unprocessable(exc: Unprocessable) -> ResponseReturnValue:
        return jsonify({"detail": exc.items}), 422

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> ResponseReturnValue:
        return jsonify({"detail": flatten_messages(exc.messages, ["body"])}), 422

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        data = getattr(exc, "data", None)  # webargs/flask-smorest attach parser messages here
        if status == 400 and data and "json" in data.get("messages", {}):
            # webargs' "Invalid JSON body": Svix answers 422 value_error.jsondecode
            return _invalid_json("Invalid JSON body.")
        if status == 422 and data and "messages" in data:
            items: list[dict[str, Any]] = []
            for location, messages in data["messages"].items():
                where = {"querystring": "query", "json": "body"}.get(location, location)
                items.extend(flatten_messages(messages, [where]))
            return jsonify({"detail": items}), 422
        detail = DETAILS.get(status) or exc.description or exc.name
        response = jsonify(error_body(CODES.get(status, "generic_error"), detail))
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response, status

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError) -> ResponseReturnValue:
        # e.g. a JSON body of 50,000 nested arrays: the parser recurses past Python's limit
        return _invalid_json("JSON nested too deeply.")

    @app.errorhandler(ValueError)
    def _value_error(exc: ValueError) -> ResponseReturnValue:
        # json.loads parses a number of more than 4,300 digits (sys.get_int_max_str_digits())
        # with int(), whose bare ValueError is not the JSONDecodeError webargs answers
        if INT_DIGITS_LIMIT in str(exc):
            return _invalid_json("JSON number has too many digits.")
        return _unhandled(exc)

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception) -> ResponseReturnValue:
        request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
        logger.exception(
            "request.failed",
            extra={"request_id": request_id, "path": request.path, "method": request.method},
        )
        body = error_body("server_error", f"Internal Server Error (request id {request_id})")
        return jsonify(body), 500
