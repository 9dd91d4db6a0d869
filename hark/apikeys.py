"""API keys: random secrets shown once, stored only as sha256 hashes, scoped to one tenant."""
from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
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
    session.add(ApiKey(id=uuid.uuid4(), tenant_id=tenant.id, name=name, key_hash=hash_key(secret), prefix=secret[:12], scope=scope))
    session.flush()
    return secret


def authenticate(session: Session, secret: str) -> Principal | None:
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None)))
    return Principal(key.tenant_id, key.id, key.scope) if key else None
