"""Pages of query results."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from dashboard.extensions import db


@dataclass
class Page:
    """One page of a list, and where it sits in the whole."""

    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the whole list fills (at least 1)."""
        return max(1, -(-self.total // self.per_page))


def paginate(query: Select, page: int, per_page: int) -> Page:
    """Run `query` for page `page` (from 1) of `per_page` rows, with the total count."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return Page(items=items, page=page, per_page=per_page, total=total or 0)


def sort_keys(sorts: dict) -> list[str]:
    """Every sort a list offers: each key of `sorts`, and "-key" for its reverse."""
    return [key for name in sorts for key in (name, f"-{name}")]


def ordering(sorts: dict, key: str) -> list:
    """The ORDER BY clauses of sort `key` ("name", or "-name" for its reverse)."""
    if not key.startswith("-"):
        return list(sorts[key])
    return [_reversed(clause) for clause in sorts[key[1:]]]


def _reversed(clause):
    if isinstance(clause, UnaryExpression) and clause.modifier is operators.desc_op:
        return clause.element.asc()
    return clause.desc()
