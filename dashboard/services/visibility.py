"""Company policy, in one place: what a user may see.

Every query for charge points and connectors made on behalf of a user starts here. A
superadmin sees every company; anyone else sees the charge points their company owns, and
the connectors of those. A resource outside that set is answered exactly like a missing one.
"""

from __future__ import annotations

from sqlalchemy import Select, false, select

from dashboard.models import ChargePoint, Connector, User


def _company_filter(user: User):
    if user.is_superadmin:
        return None
    if user.company_id is None:
        return false()
    return ChargePoint.company_id == user.company_id


def chargepoints_visible_to(user: User) -> Select:
    """SELECT of the charge points `user` may see."""
    query = select(ChargePoint)
    condition = _company_filter(user)
    return query if condition is None else query.where(condition)


def connectors_visible_to(user: User) -> Select:
    """SELECT of the connectors `user` may see (joined to their charge point)."""
    query = select(Connector).join(ChargePoint, Connector.connector_cp_id == ChargePoint.id)
    condition = _company_filter(user)
    return query if condition is None else query.where(condition)
