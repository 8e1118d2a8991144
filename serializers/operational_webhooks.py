"""Operational-webhook endpoint schemas: the endpoint schemas without channels (Svix's
OperationalWebhookEndpointIn / UpsertIn / Out, secret and headers)."""

from __future__ import annotations

from serializers.base import BaseSchema, ListQuery, list_response
from serializers.endpoints import (
    EndpointHeadersIn,
    EndpointHeadersOut,
    EndpointIn,
    EndpointOut,
    EndpointSecretOut,
    EndpointSecretRotateIn,
    EndpointUpsertIn,
)


class OperationalWebhookEndpointUpsertIn(EndpointUpsertIn):
    """Body of PUT /operational-webhook/endpoint/{endpoint_id}: a full replacement."""

    class Meta(BaseSchema.Meta):
        exclude = ("channels",)


class OperationalWebhookEndpointIn(EndpointIn):
    """Body of POST /operational-webhook/endpoint (a secret is generated unless given)."""

    class Meta(BaseSchema.Meta):
        exclude = ("channels",)


class OperationalWebhookEndpointOut(EndpointOut):
    """An operational-webhook endpoint as returned by the API."""

    class Meta(BaseSchema.Meta):
        exclude = ("channels", "filter_types", "version")


class OperationalWebhookEndpointSecretOut(EndpointSecretOut):
    """`{"key": "whsec_..."}` of an operational-webhook endpoint."""


class OperationalWebhookEndpointSecretIn(EndpointSecretRotateIn):
    """Body of POST .../secret/rotate."""


class OperationalWebhookEndpointHeadersIn(EndpointHeadersIn):
    """Body of PUT .../headers: the full set of custom headers."""


class OperationalWebhookEndpointHeadersOut(EndpointHeadersOut):
    """Custom headers; values of sensitive ones are withheld and only their names listed."""


class OperationalWebhookEndpointListQuery(ListQuery):
    """Query of GET /operational-webhook/endpoint (newest first by default)."""


ListResponseOperationalWebhookEndpointOut = list_response(
    OperationalWebhookEndpointOut, "ListResponseOperationalWebhookEndpointOut"
)
