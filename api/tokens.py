"""Tokens, for admins: make one (shown once), list them (never the secret), revoke one."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.errors import AUTHENTICATED, responses
from api.models import Role, RowId, Token, User, utcnow
from api.security import Admin, create_token
from pavement.errors import ConfigError

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=AUTHENTICATED)


class TokenMade(BaseModel):
    id: int
    name: str
    role: Role
    token: str = Field(description="the secret: shown in this answer only")


class TokenOut(BaseModel):
    id: int
    name: str
    role: Role
    prefix: str = Field(description="the secret's first characters, to tell tokens apart")
    created_at: str
    last_used_at: str | None
    revoked: bool


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="who or what uses it, e.g. patrol-car-12")
    role: Role


@router.post(
    "",
    status_code=201,
    summary="Make a token (the secret is in this answer only)",
    responses=responses(400, 409),
)
def make_token(body: TokenIn, request: Request, _: Admin) -> TokenMade:
    with request.app.state.store.session() as session:
        try:
            new = create_token(session, body.name, body.role)
        except ConfigError as exc:
            raise HTTPException(409, str(exc)) from None
        return TokenMade(id=new.token_id, name=new.name, role=new.role, token=new.token)


@router.get("", summary="Tokens (without their secrets)")
def list_tokens(request: Request, _: Admin) -> list[TokenOut]:
    with request.app.state.store.session() as session:
        found = session.execute(select(Token, User).join(User).order_by(Token.id)).all()
        return [
            TokenOut(
                id=t.id,
                name=u.name,
                role=u.role,
                prefix=t.prefix,
                created_at=t.created_at.isoformat(),
                last_used_at=t.last_used_at.isoformat() if t.last_used_at else None,
                revoked=t.revoked_at is not None,
            )
            for t, u in found
        ]


@router.delete("/{token_id}", status_code=204, summary="Revoke a token", responses=responses(404))
def revoke_token(token_id: RowId, request: Request, _: Admin) -> Response:
    with request.app.state.store.session() as session:
        token = session.get(Token, token_id)
        if token is None:
            raise HTTPException(404, f"no token {token_id}")
        token.revoked_at = token.revoked_at or utcnow()
    return Response(status_code=204)
