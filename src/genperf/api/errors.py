"""One JSON error shape for every 4xx and 5xx, and the one place errors become HTTP.

Every error body is ``{"error": {"code": ..., "message": ..., "field": ...}}``; ``field``
names the parameter or body field at fault, or is null. genperf's own exceptions map here
(:func:`genperf_error`), request validation maps here, and anything unexpected becomes a 500
whose body says nothing about the internals (the traceback goes to the log).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match

from genperf.errors import (
    ConfigError,
    GenperfError,
    InvalidFieldValueError,
    StoreError,
    StoreUnavailableError,
    TaskStateError,
    UnknownCursorError,
    UnknownFieldError,
    UnknownTaskError,
)

logger = logging.getLogger("genperf.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}

# Parts of a validation error's location that say where, not what.
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(HTTPException):
    """An HTTP error with the API's error code and, when there is one, the field at fault."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=dict(headers or {}))
        self.code = code
        self.field = field


def error_response(
    status_code: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, field=field))
    return JSONResponse(body.model_dump(), status_code=status_code, headers=headers)


def genperf_error(exc: GenperfError) -> tuple[int, str, str | None]:
    """(status, code, field) of one of genperf's exceptions."""
    if isinstance(exc, UnknownTaskError):
        return 404, "unknown_task", None
    if isinstance(exc, UnknownCursorError):  # a stale page link: nothing is there (any more)
        return 404, "unknown_cursor", exc.field
    if isinstance(exc, UnknownFieldError):
        return 422, "unknown_field", exc.field
    if isinstance(exc, InvalidFieldValueError):
        return 422, "invalid_value", exc.field
    if isinstance(exc, TaskStateError):
        return 409, "task_state", None
    if isinstance(exc, StoreUnavailableError | StoreError):
        return 503, "store_unavailable", None
    if isinstance(exc, ConfigError):
        return 500, "config_error", exc.key
    return 500, "internal_error", None


async def _genperf_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GenperfError)
    status, code, field = genperf_error(exc)
    if status >= 500:
        # Store errors name the database by its redacted URL; log them, show less.
        logger.warning("%s %s failed: %s", request.method, request.url.path, exc)
        message = (
            "the database is unavailable; try again later"
            if code == "store_unavailable"
            else "internal error"
        )
        retry = {"Retry-After": "5"} if code == "store_unavailable" else None
        return error_response(status, code, message, field, headers=retry)
    return error_response(status, code, str(exc), field)


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(
        exc.status_code, code, str(exc.detail), getattr(exc, "field", None), headers=headers
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method of every route of this path (Starlette's 405 names only the first
    route's, and a path such as /tasks/{task_id} has GET and PATCH on two routes)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first: Mapping[str, Any] = errors[0] if errors else {}
    field = field_name(first.get("loc", ()))
    message = str(first.get("msg", "invalid request"))
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    elif first.get("type") == "json_invalid":
        message = "the body is not valid JSON"
        field = None
    elif first.get("type") == "model_attributes_type" or (
        first.get("type") == "missing" and field is None
    ):
        message = "a JSON object body is required"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    where = f"{field}: " if field else ""
    return error_response(422, "invalid_request", f"{where}{message}{more}", field)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.error("%s %s: unexpected error", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def field_name(loc: Sequence[Any]) -> str | None:
    """("query", "time_window_hours") -> "time_window_hours"; ("body", "phases", 0, "name")
    -> "phases[0].name"."""
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or None


def install(app: FastAPI) -> None:
    """Register the handlers: one for genperf's exceptions, one per framework error."""
    app.add_exception_handler(GenperfError, _genperf_handler)
    app.add_exception_handler(HTTPException, _http_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


# For OpenAPI: what every route may answer besides its success.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "The Host header is not one this server answers to"),
        (401, "Missing or invalid API token"),
        (403, "The token's role does not allow this, or the client is not allowed"),
        (413, "Request body too large"),
        (422, "A parameter or body field is invalid (named in error.field)"),
        (500, "Internal error"),
        (503, "The database is unavailable"),
    )
}
