"""All models, imported so Alembic and the app see every table."""

from api.models.api_token import ApiToken
from api.models.app_token import AppPortalToken
from api.models.application import Application, AppRouting
from api.models.attempt import MessageAttempt
from api.models.background_task import BackgroundTask
from api.models.delivery import Delivery, MessageStatus, TriggerType
from api.models.endpoint import Endpoint
from api.models.event_type import EventType
from api.models.message import Message
from api.models.organization import Organization

__all__ = [
    "ApiToken",
    "AppPortalToken",
    "AppRouting",
    "Application",
    "BackgroundTask",
    "Delivery",
    "Endpoint",
    "EventType",
    "Message",
    "MessageAttempt",
    "MessageStatus",
    "Organization",
    "TriggerType",
]
