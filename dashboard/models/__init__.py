"""The models, one module per entity; importing this package registers them all."""

from dashboard.models.chargepoint import REGISTRATION_STATUSES, ChargePoint
from dashboard.models.charging import (
    AUTHORIZATION_MODES,
    IDTAG_STATUSES,
    DataTransferMessage,
    IdTag,
    MeterValue,
    Transaction,
)
from dashboard.models.command import Command
from dashboard.models.company import Company
from dashboard.models.connector import HISTORY_SOURCES, Connector, ConnectorStatusHistory
from dashboard.models.event import OutboxEvent
from dashboard.models.incident import (
    ConnectivityEvent,
    Incident,
    IncidentRule,
    JobMark,
)
from dashboard.models.uptime import EXCLUSION_CAUSES, UptimeDay, UptimeDirty, UptimeExclusion
from dashboard.models.user import ApiToken, Role, User
from dashboard.models.webhook import WebhookDelivery, WebhookEndpoint

__all__ = [
    "AUTHORIZATION_MODES",
    "IDTAG_STATUSES",
    "DataTransferMessage",
    "IdTag",
    "MeterValue",
    "Transaction",
    "HISTORY_SOURCES",
    "REGISTRATION_STATUSES",
    "ApiToken",
    "ChargePoint",
    "Command",
    "Company",
    "Connector",
    "ConnectorStatusHistory",
    "Role",
    "User",
    "OutboxEvent",
    "ConnectivityEvent",
    "Incident",
    "IncidentRule",
    "JobMark",
    "WebhookDelivery",
    "WebhookEndpoint",
    "EXCLUSION_CAUSES",
    "UptimeDay",
    "UptimeDirty",
    "UptimeExclusion",
]
