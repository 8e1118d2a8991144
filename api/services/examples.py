"""Send an event type's example to one endpoint (POST …/endpoint/{ep}/send-example).

The example is a real message (stored, signed, on the retry schedule, in the attempt log)
with exactly one delivery: the endpoint named in the path, whatever its filters. It is not
routed like `messages.create_message`, so the application's other endpoints get nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from typing import Any

from api.errors import BadRequest, Unprocessable
from api.extensions import db
from api.models import EventType, Message
from api.services.delivery import outbox
from api.services.event_types import get_event_type
from api.services.lookup import get_app_endpoint
from api.services.messages import message_row

logger = logging.getLogger(__name__)

# As Svix's server: `svix.ping` needs no event type and sends this.
PING_EVENT_TYPE = "svix.ping"
PING_PAYLOAD: dict[str, Any] = {"success": True}
NO_EXAMPLE = "Unable to generate example message from event-type schema"


def _schema(event_type: EventType) -> dict[str, Any] | None:
    """The schema whose examples are used: version "1" (Svix's), else the first version."""
    schemas = event_type.schemas or {}
    if "1" in schemas:
        chosen = schemas["1"]
    else:
        chosen = next((schemas[key] for key in sorted(schemas)), None)
    return chosen if isinstance(chosen, dict) else None


def example_payload(
    org_id: str,
    event_type_name: str,
    index: int = 0,
    feature_flags: Collection[str] | None = None,
) -> dict[str, Any]:
    """The payload to send: `examples[index]` of the event type's schema (422 when the index
    is past the end), `{"success": true}` for svix.ping; 404 for an unknown (or, with an app
    portal token's `feature_flags`, hidden) event type; 400 `invalid_scheme` without examples."""
    if event_type_name == PING_EVENT_TYPE:
        return dict(PING_PAYLOAD)
    event_type = get_event_type(org_id, event_type_name, feature_flags)
    examples = (_schema(event_type) or {}).get("examples")
    if not isinstance(examples, list) or not examples:
        raise BadRequest("invalid_scheme", NO_EXAMPLE)
    if index >= len(examples):
        raise Unprocessable.at(
            ["body", "exampleIndex"],
            f"The event type's schema has {len(examples)} example(s): use 0..{len(examples) - 1}.",
        )
    example = examples[index]
    if not isinstance(example, dict):
        raise BadRequest("invalid_scheme", "The example is not a JSON object.")
    return example


def send_example(
    org_id: str,
    app_id_or_uid: str,
    endpoint_id_or_uid: str,
    event_type_name: str,
    index: int = 0,
    feature_flags: Collection[str] | None = None,
) -> Message:
    """Store the example as a message of the endpoint's application with one due delivery to
    that endpoint (none when it is disabled, as a resend), commit, then wake a pump."""
    endpoint = get_app_endpoint(org_id, app_id_or_uid, endpoint_id_or_uid)
    payload = example_payload(org_id, event_type_name, index, feature_flags)
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    fields = {"event_type": event_type_name, "payload_text": text}
    message = Message(**message_row(org_id, endpoint.app_id, fields))
    db.session.add(message)
    db.session.flush()  # the delivery references it
    queued = not endpoint.disabled
    if queued:
        outbox.add_delivery(message, endpoint)
    db.session.commit()
    if queued:
        outbox.wake()
    logger.info(
        "example.sent",
        extra={
            "msg_id": message.id,
            "endpoint_id": endpoint.id,
            "event_type": event_type_name,
            "queued": queued,
        },
    )
    return message
