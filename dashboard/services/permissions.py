"""Roles and permissions, defined in this one place.

A role is a set of permission strings. `superadmin` holds every permission and sees every
company; `company_user` reads its own company's charge points and connectors. A new role is
one more entry in BUILTIN_ROLES: `sync_builtin_roles()` writes them to the database, and the
CLI commands that create users call it.
"""

from __future__ import annotations

from dashboard.extensions import db
from dashboard.models import Role, User
from dashboard.services.errors import Forbidden

RESOURCES = ("connector", "chargepoint", "idtag", "webhook")
VERBS = ("create", "read", "update", "delete")
# Transactions are written by charge points only: they are read. Events are read; incidents
# are read and acknowledged (update); the rules that open incidents are set by operators.
# Uptime reports are read; operators record exclusions of out-time.
PERMISSIONS = (
    *(f"{verb}.{resource}" for resource in RESOURCES for verb in VERBS),
    "read.transaction",
    "read.event",
    "read.incident",
    "update.incident",
    "update.incident_rule",
    "read.report",
    "create.exclusion",
)

BUILTIN_ROLES: dict[str, dict] = {
    "superadmin": {"permissions": list(PERMISSIONS), "all_companies": True},
    "company_user": {
        "permissions": [
            "read.connector",
            "read.chargepoint",
            "read.idtag",
            "read.transaction",
            # Their own company's events, webhooks and incidents.
            "read.event",
            *(f"{verb}.webhook" for verb in VERBS),
            "read.incident",
            "update.incident",
            # Uptime reports of their own ports; exclusions are the operators'.
            "read.report",
        ],
        "all_companies": False,
    },
}


def sync_builtin_roles() -> dict[str, Role]:
    """Create or update the built-in roles so the database matches BUILTIN_ROLES."""
    existing = {role.name: role for role in db.session.scalars(db.select(Role))}
    for name, spec in BUILTIN_ROLES.items():
        role = existing.get(name)
        if role is None:
            role = Role(name=name)
            db.session.add(role)
            existing[name] = role
        role.permissions = list(spec["permissions"])
        role.all_companies = spec["all_companies"]
    db.session.flush()
    return existing


class _System:
    """The actor behind operations no person asked for: the CLI run by an operator, and
    charge points speaking OCPP. Every permission, every company."""

    id = None
    company_id = None
    is_superadmin = True
    email = "system"

    def can(self, permission: str) -> bool:
        return True


SYSTEM = _System()


def require(user: User, permission: str) -> None:
    """Raise Forbidden unless `user` holds `permission`."""
    if not user.can(permission):
        raise Forbidden(f"Permission '{permission}' is required")
