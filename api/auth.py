"""Bearer-token authentication: `@require_auth` puts the caller's Principal in `g.principal`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from api.errors import ApiError
from api.services.tokens import Principal, authenticate

F = TypeVar("F", bound=Callable[..., Any])


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "authentication_failed", detail)


def current_principal() -> Principal:
    """The authenticated caller of this request (set by require_auth)."""
    principal: Principal = g.principal
    return principal


def require_auth(view: F) -> F:
    """Reject the request with 401 unless it carries `Authorization: Bearer <valid token>`."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise _unauthorized("Missing Authorization header.")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Authorization must be 'Bearer <token>'.")
        principal = authenticate(token.strip())
        if principal is None:
            raise _unauthorized("Invalid token")
        g.principal = principal
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
