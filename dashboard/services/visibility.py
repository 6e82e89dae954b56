"""Company policy, in one place: what a user may see.

Every query for charge points and connectors made on behalf of a user starts here. A
superadmin sees every company; anyone else sees the charge points their company owns, and
the connectors of those. A resource outside that set is answered exactly like a missing one.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Select, false, select
from sqlalchemy.orm import contains_eager

from dashboard.models import ChargePoint, Connector, IdTag, Transaction, User


def company_scope(user: User) -> int | None:
    """None: every company; otherwise the id of the user's company (0: none, sees nothing)."""
    if user.is_superadmin:
        return None
    return user.company_id or 0


def _company_filter(scope: int | None):
    if scope is None:
        return None
    if scope == 0:
        return false()
    return ChargePoint.company_id == scope


# The statements are built once per scope: they are immutable, and building one costs more
# than running it on a list request.
@lru_cache(maxsize=4096)
def _chargepoints_in(scope: int | None) -> Select:
    query = select(ChargePoint)
    condition = _company_filter(scope)
    return query if condition is None else query.where(condition)


@lru_cache(maxsize=4096)
def _connectors_in(scope: int | None) -> Select:
    # The charge point comes with each connector (its connection says whether the status
    # is current): the join is there for company policy anyway.
    query = (
        select(Connector)
        .join(ChargePoint, Connector.connector_cp_id == ChargePoint.id)
        .options(contains_eager(Connector.chargepoint))
    )
    condition = _company_filter(scope)
    return query if condition is None else query.where(condition)


def chargepoints_visible_to(user: User) -> Select:
    """SELECT of the charge points `user` may see (the same object for the same scope)."""
    return _chargepoints_in(company_scope(user))


def connectors_visible_to(user: User) -> Select:
    """SELECT of the connectors `user` may see, joined to their charge point (the same
    object for the same scope)."""
    return _connectors_in(company_scope(user))


@lru_cache(maxsize=4096)
def _transactions_in(scope: int | None) -> Select:
    query = select(Transaction).join(ChargePoint, Transaction.cp_id == ChargePoint.id)
    condition = _company_filter(scope)
    return query if condition is None else query.where(condition)


def transactions_visible_to(user: User) -> Select:
    """SELECT of the transactions of the charge points `user` may see, joined to them."""
    return _transactions_in(company_scope(user))


def idtags_visible_to(user: User) -> Select:
    """SELECT of the id tags of the companies `user` may see."""
    return scoped(select(IdTag), IdTag.company_id, user)


def scoped(query: Select, company_column, user: User) -> Select:
    """`query` limited to the rows whose `company_column` is a company `user` may see: for
    what belongs to a company directly (events, incidents, webhook endpoints)."""
    scope = company_scope(user)
    if scope is None:
        return query
    return query.where(company_column == scope) if scope else query.where(false())
