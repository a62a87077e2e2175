"""Bearer tokens and roles.

A token is ``pvt_`` + 43 random URL-safe characters, shown once when it is made; the store keeps
only its sha256 (a random 256-bit secret needs no slow hash: there is nothing to guess). Roles:
``uploader`` < ``engineer`` for reading; ``admin`` may do everything. Development mode
(``--dev``, loopback only) also accepts the token ``dev`` as the admin ``dev``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import Store
from api.models import Role, Token, User, utcnow
from api.settings import DEV_TOKEN
from pavement.errors import ConfigError

TOKEN_PREFIX = "pvt_"
_LAST_USED_RESOLUTION = timedelta(minutes=5)  # don't write the table on every request

bearer_scheme = HTTPBearer(auto_error=False, description="a token from 'pavement token create'")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user behind the token."""

    user_id: int
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: str  # the secret: shown once, never stored
    token_id: int
    user_id: int
    name: str
    role: Role


def create_token(session: Session, name: str, role: str) -> NewToken:
    """A new token for the user ``name`` (made with ``role`` if new; an existing user must have
    that role)."""
    try:
        role = Role(role)
    except ValueError:
        raise ConfigError(
            f"role {role!r} is unknown; use one of {', '.join(r.value for r in Role)}"
        ) from None
    name = name.strip()
    if not name or len(name) > 100:
        raise ConfigError("a token needs a name of 1-100 characters (who or what uses it)")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, role=role)
        session.add(user)
        session.flush()
    elif user.role != role:
        raise ConfigError(
            f"user {name!r} exists with role {user.role}, not {role}; choose another name for a {role} token"
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(user_id=user.id, token_hash=hash_token(secret), prefix=secret[: len(TOKEN_PREFIX) + 6])
    session.add(token)
    session.flush()
    return NewToken(secret, token.id, user.id, user.name, role)


def ensure_dev_user(store: Store) -> int:
    """The admin user ``dev`` of development mode (made on first use)."""
    with store.session() as session:
        user = session.scalar(select(User).where(User.name == DEV_TOKEN))
        if user is None:
            user = User(name=DEV_TOKEN, role=Role.ADMIN)
            session.add(user)
            session.flush()
        return user.id


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 without a valid token."""
    if credentials is None:
        raise _unauthorized(
            "missing bearer token: send 'Authorization: Bearer <token>' "
            "(an admin makes one with 'pavement token create')"
        )
    state = request.app.state
    secret = credentials.credentials
    if state.settings.dev and secret == DEV_TOKEN:
        return Principal(state.dev_user_id, DEV_TOKEN, Role.ADMIN)
    store: Store = state.store
    with store.session() as session:
        row = session.execute(
            select(Token, User).join(User).where(Token.token_hash == hash_token(secret))
        ).one_or_none()
        if row is None or row.Token.revoked_at is not None:
            raise _unauthorized("invalid or revoked token")
        now = utcnow()
        if row.Token.last_used_at is None or now - row.Token.last_used_at > _LAST_USED_RESOLUTION:
            row.Token.last_used_at = now
        return Principal(row.User.id, row.User.name, Role(row.User.role))


def require(*roles: Role):
    """Dependency: the caller, who must have one of ``roles`` (admin always passes); 403 otherwise."""
    allowed = {*roles, Role.ADMIN}

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(
                status_code=403,
                detail=f"role {principal.role} may not do this; it needs "
                + " or ".join(sorted(r.value for r in allowed)),
            )
        return principal

    return dependency


ANY_ROLE = require(Role.UPLOADER, Role.ENGINEER)
UPLOADER = require(Role.UPLOADER)
ENGINEER = require(Role.ENGINEER)
ADMIN = require()

#: Parameter types of the endpoints: the caller, checked for the role.
AnyRole = Annotated[Principal, Depends(ANY_ROLE)]
Uploader = Annotated[Principal, Depends(UPLOADER)]
Engineer = Annotated[Principal, Depends(ENGINEER)]
Admin = Annotated[Principal, Depends(ADMIN)]
