"""Companies, users and API tokens: the administration a superadmin does (pages, CLI)."""

from __future__ import annotations

from sqlalchemy import func, select

from dashboard.auth.tokens import issue_token, revoke_token
from dashboard.extensions import db
from dashboard.models import ApiToken, ChargePoint, Company, User
from dashboard.services.errors import Conflict, Forbidden, Invalid, NotFound
from dashboard.services.permissions import BUILTIN_ROLES, sync_builtin_roles

MIN_PASSWORD = 8


def require_superadmin(actor) -> None:
    """Administration is for superadmins only."""
    if not actor.is_superadmin:
        raise Forbidden("Only a superadmin may do this")


def list_companies(actor) -> list[tuple[Company, int, int]]:
    """Every company with its number of charge points and of users."""
    require_superadmin(actor)
    cps = (
        select(func.count(ChargePoint.id))
        .where(ChargePoint.company_id == Company.id)
        .scalar_subquery()
    )
    users = select(func.count(User.id)).where(User.company_id == Company.id).scalar_subquery()
    return list(db.session.execute(select(Company, cps, users).order_by(Company.name)))


def create_company(actor, name: str) -> Company:
    """Create a company named `name` (unique, not blank)."""
    require_superadmin(actor)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid("Invalid company", {"name": ["1 to 120 characters."]})
    if db.session.scalar(select(Company).where(Company.name == name)) is not None:
        raise Conflict(f"A company named {name!r} already exists", {"name": ["Already taken."]})
    company = Company(name=name)
    db.session.add(company)
    db.session.flush()
    return company


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise Invalid("Invalid password", {"password": [f"At least {MIN_PASSWORD} characters."]})


def _role_and_company(role_name: str, company_id: int | None):
    roles = sync_builtin_roles()
    if role_name not in BUILTIN_ROLES:
        raise Invalid("Invalid role", {"role": [f"One of {', '.join(BUILTIN_ROLES)}."]})
    role = roles[role_name]
    if not role.all_companies and company_id is None:
        raise Invalid("A company is needed", {"company_id": [f"A {role_name} needs a company."]})
    if company_id is not None and db.session.get(Company, company_id) is None:
        raise Invalid("Unknown company", {"company_id": [f"No company with id {company_id}."]})
    return role, (company_id if not role.all_companies else company_id)


def list_users(actor) -> list[User]:
    """Every user, by email."""
    require_superadmin(actor)
    return list(db.session.scalars(select(User).order_by(User.email)))


def create_user(actor, email: str, password: str, role_name: str, company_id: int | None) -> User:
    """Create a user with a role; a company user must belong to a company."""
    require_superadmin(actor)
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254:
        raise Invalid("Invalid email", {"email": ["An email address."]})
    _check_password(password)
    role, company_id = _role_and_company(role_name, company_id)
    if db.session.scalar(select(User).where(User.email == email)) is not None:
        raise Conflict(f"A user with email {email} already exists", {"email": ["Already taken."]})
    user = User(email=email, role=role, company_id=company_id)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def get_user(actor, user_id: int) -> User:
    """One user."""
    require_superadmin(actor)
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


def update_user(
    actor, user_id: int, *, role_name: str, company_id: int | None, active: bool
) -> User:
    """Change a user's role, company and whether they may sign in."""
    user = get_user(actor, user_id)
    if user.id == actor.id and (not active or role_name != user.role.name):
        raise Invalid("Not on yourself", {"role": ["You cannot demote or deactivate yourself."]})
    user.role, user.company_id = _role_and_company(role_name, company_id)
    user.active = active
    db.session.flush()
    return user


def reset_password(actor, user_id: int, password: str) -> User:
    """Give a user a new password."""
    user = get_user(actor, user_id)
    _check_password(password)
    user.set_password(password)
    db.session.flush()
    return user


def list_tokens(actor) -> list[ApiToken]:
    """Every API token, newest first."""
    require_superadmin(actor)
    return list(db.session.scalars(select(ApiToken).order_by(ApiToken.created.desc())))


def create_token(actor, user_id: int, name: str) -> tuple[ApiToken, str]:
    """A new token for a user; the clear text is returned once and never stored."""
    user = get_user(actor, user_id)
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise Invalid("Invalid name", {"name": ["1 to 80 characters."]})
    return issue_token(user, name)


def revoke(actor, token_id: int) -> ApiToken:
    """Revoke a token: it stops working at once."""
    require_superadmin(actor)
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"Token {token_id} not found")
    revoke_token(token)
    return token
