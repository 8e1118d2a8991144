"""Bearer-token authentication: `@require_auth` puts the caller's Principal in `g.principal`;
an app portal token is also held to api/capabilities.py's table (403 / 404) before the view."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from api import capabilities
from api.errors import ApiError
from api.services.tokens import Principal, authenticate

F = TypeVar("F", bound=Callable[..., Any])


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "authentication_failed", detail)


def current_principal() -> Principal:
    """The authenticated caller of this request (set by require_auth)."""
    principal: Principal = g.principal
    return principal


def _bearer_token(header: str) -> str | None:
    """The token of `Bearer <token>`, or None for another scheme or an empty token."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _authenticated(token: str) -> Principal | None:
    """authenticate(token), asked once per request: the idempotency hook asks before the view
    (an app portal token's lookup is a query each time)."""
    asked = request.environ.get(_ASKED)  # the request's own (g can outlive a request)
    if asked is not None and asked[0] == token:
        return asked[1]  # type: ignore[no-any-return]
    principal = authenticate(token)
    request.environ[_ASKED] = (token, principal)
    return principal


_ASKED = "herald.authenticated"


def request_principal() -> Principal | None:
    """The Principal of this request's bearer token, or None (no token, or not a valid one)."""
    token = _bearer_token(request.headers.get("Authorization", ""))
    return None if token is None else _authenticated(token)


def require_auth(view: F) -> F:
    """Reject the request with 401 unless it carries `Authorization: Bearer <valid token>`;
    an app portal token with 403 or 404 unless api/capabilities.py lets it through."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        token = _bearer_token(header)
        if not header:
            raise _unauthorized("Missing Authorization header.")
        if token is None:
            raise _unauthorized("Authorization must be 'Bearer <token>'.")
        principal = _authenticated(token)
        if principal is None:
            raise _unauthorized("Invalid token")
        if principal.is_app_token:
            capabilities.authorize(principal)
        g.principal = principal
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
