"""Who is calling: OIDC JWTs (RS256 through a JWKS) and hashed, revocable API keys.

The API Gateway Lambda authorizer and the local server both call ``authenticate``;
the API function then reads the resulting principal from the request context, so a
handler never sees an unauthenticated request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import jwt
from pydantic import BaseModel, ValidationError

from sightline.models import TenantId, utcnow
from sightline.ports import TableStore


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


class AuthError(Exception):
    """401: no credentials, or credentials that do not verify."""


class Forbidden(Exception):
    """403: a verified caller whose role does not allow the action."""


class Principal(BaseModel):
    subject: str
    tenant_id: TenantId
    role: Role
    via: Literal["jwt", "api_key"]

    def require(self, role: Role) -> None:
        if _RANK[self.role] < _RANK[role]:
            raise Forbidden(f"this action needs the {role.value} role")

    def to_context(self) -> dict[str, str]:
        """The authorizer context (API Gateway passes only strings)."""
        return {
            "subject": self.subject,
            "tenant_id": self.tenant_id,
            "role": self.role.value,
            "via": self.via,
        }

    @classmethod
    def from_context(cls, ctx: Mapping[str, Any] | None) -> Principal:
        try:
            return cls.model_validate(
                {k: (ctx or {}).get(k) for k in ("subject", "tenant_id", "role", "via")}
            )
        except ValidationError as exc:
            raise AuthError("the request carries no verified principal") from exc


def _highest(roles: Any) -> Role:
    if isinstance(roles, str):
        roles = [roles]
    known = [Role(r) for r in roles or [] if r in Role._value2member_map_]
    if not known:
        raise AuthError("the token grants no Sightline role")
    return max(known, key=lambda r: _RANK[r])


class TokenVerifier:
    """Verifies RS256 JWTs against a JWKS: signature, issuer, audience, exp, nbf."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: dict[str, Any] | None = None,
        jwks_url: str | None = None,
        leeway_s: int = 30,
    ) -> None:
        if (jwks is None) == (jwks_url is None):
            raise ValueError("give exactly one of jwks or jwks_url")
        self.issuer, self.audience, self.leeway = issuer, audience, leeway_s
        self._static = jwt.PyJWKSet.from_dict(jwks) if jwks is not None else None
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None

    def _key(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise AuthError("malformed token") from exc
        if self._client is not None:
            try:
                return self._client.get_signing_key(kid).key
            except jwt.PyJWTError as exc:
                raise AuthError("unknown signing key") from exc
        assert self._static is not None
        for key in self._static.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise AuthError("unknown signing key")

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("token not yet valid") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("token from an unknown issuer") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token for another audience") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("invalid token") from exc
        org, project = claims.get("org_id"), claims.get("project_id")
        if not org or not project:
            raise AuthError("token lacks org_id/project_id claims")
        try:
            return Principal(
                subject=str(claims["sub"]),
                tenant_id=f"{org}/{project}",
                role=_highest(claims.get("roles")),
                via="jwt",
            )
        except ValidationError as exc:
            raise AuthError("token claims are not a valid tenant") from exc


class ApiKeys:
    """Service-account keys: ``slk_<id>_<secret>``; only a hash of the secret is stored."""

    PK = "apikey"

    def __init__(self, tables: TableStore) -> None:
        self._t = tables.table("api_keys")

    @staticmethod
    def _hash(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def create(self, tenant_id: str, role: Role, name: str) -> tuple[str, str]:
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        self._t.put(
            self.PK,
            key_id,
            {
                "key_id": key_id,
                "tenant_id": tenant_id,
                "role": role.value,
                "name": name,
                "hash": self._hash(secret),
                "revoked": False,
                "created_at": utcnow().isoformat(),
            },
        )
        return key_id, f"slk_{key_id}_{secret}"

    def verify(self, presented: str) -> Principal:
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != "slk":
            raise AuthError("malformed API key")
        item = self._t.get(self.PK, parts[1])
        # Compare in constant time even when the key id is unknown.
        expected = item["hash"] if item else self._hash("unknown")
        if not hmac.compare_digest(expected, self._hash(parts[2])) or not item:
            raise AuthError("invalid API key")
        if item.get("revoked"):
            raise AuthError("API key revoked")
        return Principal(
            subject=f"apikey:{parts[1]}",
            tenant_id=item["tenant_id"],
            role=Role(item["role"]),
            via="api_key",
        )

    def list(self, tenant_id: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in i.items() if k != "hash"}
            for i in self._t.query(self.PK)
            if i["tenant_id"] == tenant_id
        ]

    def revoke(self, tenant_id: str, key_id: str) -> bool:
        item = self._t.get(self.PK, key_id)
        if not item or item["tenant_id"] != tenant_id:
            return False
        self._t.update(self.PK, key_id, {"revoked": True, "revoked_at": utcnow().isoformat()})
        return True


def authenticate(
    headers: Mapping[str, str], *, verifier: TokenVerifier, keys: ApiKeys
) -> Principal:
    """The caller behind ``Authorization: Bearer <jwt>`` or ``X-Api-Key``."""
    lower = {k.lower(): v for k, v in headers.items() if isinstance(v, str)}
    auth = lower.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("use Authorization: Bearer <token>")
        return verifier.verify(token.strip())
    if lower.get("x-api-key"):
        return keys.verify(lower["x-api-key"])
    raise AuthError("missing credentials")


class DevSigner:
    """Local development tokens: an RSA key under SIGHTLINE_HOME and its JWKS."""

    ISSUER = "sightline-local"
    AUDIENCE = "sightline"
    _lock = threading.Lock()

    def __init__(self, key_dir: Path) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.dir = key_dir
        pem = key_dir / "dev-signing-key.pem"
        with self._lock:
            if not pem.is_file():
                key_dir.mkdir(parents=True, exist_ok=True)
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem.write_bytes(
                    key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                )
                pem.chmod(0o600)
        self._key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        self.kid = hashlib.sha256(json.dumps(public, sort_keys=True).encode()).hexdigest()[:16]
        self.jwks = {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def mint(
        self, *, org: str, project: str, role: Role, ttl_s: int = 3600, subject: str = "dev-user"
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.ISSUER,
            "aud": self.AUDIENCE,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "org_id": org,
            "project_id": project,
            "roles": [role.value],
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(issuer=self.ISSUER, audience=self.AUDIENCE, jwks=self.jwks)
