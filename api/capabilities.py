"""What an app portal token (`appsk_…`) may call: the one table of routes it may reach.

The capabilities are Svix's AppPortalCapability values (serializers/auth.py). `require_auth`
calls `authorize()` for every request made with an app token; a route (Flask endpoint +
method) missing from RULES is 403 for app tokens (deny by default: a new route stays org-only
until it is added here). Org tokens are not affected by anything in this module.

Scopes:
- APP: a route under /api/v1/app/{app_id}/…; the path must name the token's own application
  (by id or uid), any other application is 404, as if it did not exist;
- CATALOG: the org's event-type catalog, read-only (the blueprint hides event types whose
  feature flag the token does not hold);
- SESSION: the token's own session (portal-session, logout).
"""

from __future__ import annotations

from flask import request

from api.errors import Forbidden, NotFound
from api.services.tokens import Principal
from serializers.auth import (
    CAPABILITIES,
    CREATE_ATTEMPTS,
    MANAGE_ENDPOINT,
    MANAGE_ENDPOINT_SECRET,
    VIEW_BASE,
    VIEW_ENDPOINT_SECRET,
)

# Svix: ManageEndpointSecret "allows user to rotate and view the endpoint secret";
# ManageEndpoint "to read/modify any field or configuration of an endpoint (including secrets)".
IMPLIES: dict[str, frozenset[str]] = {
    MANAGE_ENDPOINT_SECRET: frozenset({VIEW_ENDPOINT_SECRET}),
    MANAGE_ENDPOINT: frozenset({VIEW_ENDPOINT_SECRET, MANAGE_ENDPOINT_SECRET}),
}

APP, CATALOG, SESSION = "app", "catalog", "session"
ANY = ""  # SESSION routes: any live app token

# (Flask endpoint, method) -> (capability needed, scope). The only place this is decided.
RULES: dict[tuple[str, str], tuple[str, str]] = {
    # the application itself: read only
    ("applications.ApplicationById", "GET"): (VIEW_BASE, APP),
    # endpoints
    ("endpoints.Endpoints", "GET"): (VIEW_BASE, APP),
    ("endpoints.Endpoints", "POST"): (MANAGE_ENDPOINT, APP),
    ("endpoints.EndpointById", "GET"): (VIEW_BASE, APP),
    ("endpoints.EndpointById", "PUT"): (MANAGE_ENDPOINT, APP),
    ("endpoints.EndpointById", "PATCH"): (MANAGE_ENDPOINT, APP),
    ("endpoints.EndpointById", "DELETE"): (MANAGE_ENDPOINT, APP),
    ("endpoints.EndpointHeaders", "GET"): (VIEW_BASE, APP),  # sensitive values are withheld
    ("endpoints.EndpointHeaders", "PUT"): (MANAGE_ENDPOINT, APP),
    ("endpoints.EndpointHeaders", "PATCH"): (MANAGE_ENDPOINT, APP),
    ("endpoints.get_secret", "GET"): (VIEW_ENDPOINT_SECRET, APP),
    ("endpoints.rotate_secret", "POST"): (MANAGE_ENDPOINT_SECRET, APP),
    # Svix: CreateAttempts "allows user to replay missing messages and send example messages"
    ("endpoints.send_example", "POST"): (CREATE_ATTEMPTS, APP),
    ("attempts.resend", "POST"): (CREATE_ATTEMPTS, APP),
    ("attempts.recover", "POST"): (CREATE_ATTEMPTS, APP),
    ("attempts.replay_missing", "POST"): (CREATE_ATTEMPTS, APP),
    # messages and attempts: read only (creating messages stays the org's)
    ("messages.list_messages", "GET"): (VIEW_BASE, APP),
    ("messages.get_message", "GET"): (VIEW_BASE, APP),
    ("attempts.list_attempts_by_msg", "GET"): (VIEW_BASE, APP),
    ("attempts.list_attempts_by_endpoint", "GET"): (VIEW_BASE, APP),
    ("attempts.count_attempts_by_endpoint", "GET"): (VIEW_BASE, APP),
    ("attempts.get_attempt", "GET"): (VIEW_BASE, APP),
    ("attempts.get_attempt_headers", "GET"): (VIEW_BASE, APP),
    ("attempts.list_attempted_messages", "GET"): (VIEW_BASE, APP),
    ("attempts.list_attempted_destinations", "GET"): (VIEW_BASE, APP),
    ("attempts.get_stats", "GET"): (VIEW_BASE, APP),
    ("attempts.get_app_attempt_stats", "GET"): (VIEW_BASE, APP),
    # the event-type catalog, filtered by the token's feature flags
    ("event_types.EventTypes", "GET"): (VIEW_BASE, CATALOG),
    ("event_types.EventTypeByName", "GET"): (VIEW_BASE, CATALOG),
    # the token's own session
    ("authentication.portal_session", "GET"): (ANY, SESSION),
    ("authentication.logout", "POST"): (ANY, SESSION),
}


def effective(capabilities: frozenset[str]) -> frozenset[str]:
    """The granted capabilities plus the ones they imply."""
    implied = [IMPLIES.get(c, frozenset()) for c in capabilities]
    return capabilities.union(*implied)


def ordered(capabilities: frozenset[str]) -> list[str]:
    """Capabilities in Svix's enum order (stable JSON)."""
    return [c for c in CAPABILITIES if c in capabilities]


def visible_feature_flags(principal: Principal) -> frozenset[str] | None:
    """The feature flags whose event types the caller may see (an event type without a flag
    is visible to all); None: every event type (org tokens)."""
    return principal.feature_flags if principal.is_app_token else None


def rule_for(endpoint: str | None, method: str) -> tuple[str, str] | None:
    """The (capability, scope) of a route for app tokens, or None (denied)."""
    return RULES.get((endpoint or "", "GET" if method == "HEAD" else method))


def names_own_app(principal: Principal, app_id_or_uid: str | None) -> bool:
    """Whether a path's {app_id} names the token's application, by id or by uid (uids never
    look like `app_` ids, so the two cannot name different applications)."""
    if app_id_or_uid is None:
        return False
    return app_id_or_uid == principal.app_id or (
        principal.app_uid is not None and app_id_or_uid == principal.app_uid
    )


def authorize(principal: Principal) -> None:
    """Let an app token's request through, or raise 404 (another application) / 403."""
    rule = rule_for(request.endpoint, request.method)
    if rule is None:
        raise Forbidden("App portal tokens cannot use this operation.")
    capability, scope = rule
    if scope == APP and not names_own_app(principal, (request.view_args or {}).get("app_id")):
        raise NotFound()
    if capability and capability not in effective(principal.capabilities):
        raise Forbidden(f"This operation needs the {capability} capability.")
