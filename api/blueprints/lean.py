"""A hot route without flask-smorest's per-request wrappers, documented from the same schemas.

flask-smorest's `arguments` and `response` decorators both document a view and wrap it (webargs'
`use_args`, then the response's dump); on the ingest route those layers were a visible share
of each request. `documented(...)` takes only their documentation: it applies the decorators
to a placeholder and gives the view the OpenAPI entry they built (`_apidoc`, read by
`Blueprint.route`), so the document is unchanged. The view parses with `parse`, i.e. with the
same webargs parser and schema the decorator would use, so errors and behaviour are too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import Any, TypeVar

from flask_smorest import Blueprint
from marshmallow import Schema

F = TypeVar("F", bound=Callable[..., Any])


def documented(*decorators: Callable[[Any], Any]) -> Callable[[F], F]:
    """Give the view the OpenAPI documentation of `decorators` (outermost first), not their
    wrappers."""

    def placeholder(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("documentation only")

    def apply(view: F) -> F:
        documented_placeholder = reduce(lambda f, d: d(f), reversed(decorators), placeholder)
        view._apidoc = documented_placeholder._apidoc  # type: ignore[attr-defined]
        return view

    return apply


def parse(schema: Schema, location: str = "json") -> Any:
    """The request's `location` loaded with `schema`, exactly as `Blueprint.arguments` does
    (webargs' parser: its errors become the same 422s)."""
    return Blueprint.ARGUMENTS_PARSER.parse(schema, location=location)
