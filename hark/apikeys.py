"""API keys: random secrets shown once, stored only as sha256 hashes, scoped to one tenant."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from hark.models import ApiKey, Tenant

SCOPES = ("admin", "submit", "read")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    scope: str


def create_key(session: Session, tenant_name: str, name: str = "", scope: str = "admin") -> str:
    """Create (or reuse) the tenant and a new key for it; returns the secret, which is not stored."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    tenant = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
    if tenant is None:
        tenant = Tenant(id=uuid.uuid4(), name=tenant_name)
        session.add(tenant)
        session.flush()
    secret = "hark_" + secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            id=uuid.uuid4(), tenant_id=tenant.id, name=name, key_hash=hash_key(secret), prefix=secret[:12], scope=scope
        )
    )
    session.flush()
    return secret


# Built once: every API request runs it, and SQLAlchemy keys a prebuilt statement only once.
_LIVE_KEY = select(ApiKey.tenant_id, ApiKey.id, ApiKey.scope).where(
    ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None)
)


def authenticate(session: Session, secret: str) -> Principal | None:
    row = session.execute(_LIVE_KEY, {"key_hash": hash_key(secret)}).first()
    return Principal(*row) if row else None


@dataclass(frozen=True)
class KeyInfo:
    id: uuid.UUID
    tenant: str
    name: str
    prefix: str
    scope: str
    created_at: str
    revoked_at: str | None


def list_keys(session: Session, tenant_name: str | None = None) -> list[KeyInfo]:
    """Keys with their tenant, newest first; secrets cannot be listed (only hashes are stored)."""
    stmt = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id).order_by(ApiKey.created_at.desc())
    if tenant_name:
        stmt = stmt.where(Tenant.name == tenant_name)
    return [
        KeyInfo(
            k.id,
            t,
            k.name,
            k.prefix,
            k.scope,
            k.created_at.isoformat(),
            k.revoked_at.isoformat() if k.revoked_at else None,
        )
        for k, t in session.execute(stmt).all()
    ]


def revoke_key(session: Session, key: str) -> bool:
    """Revoke by key id or by the secret's shown prefix (must match one live key); True if revoked."""
    try:
        cond = ApiKey.id == uuid.UUID(key)
    except ValueError:
        cond = ApiKey.prefix == key
    found = session.scalars(select(ApiKey).where(cond, ApiKey.revoked_at.is_(None))).all()
    if len(found) != 1:
        return False
    found[0].revoked_at = func.now()
    return True
