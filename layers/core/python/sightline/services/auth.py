"""The configured authenticator: JWKS from a URL on AWS, the local dev key locally."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from sightline import factory
from sightline.api.security import ApiKeys, DevSigner, Principal, TokenVerifier, authenticate
from sightline.config import get_settings


@dataclass
class Authenticator:
    verifier: TokenVerifier
    keys: ApiKeys

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return authenticate(headers, verifier=self.verifier, keys=self.keys)


@cache
def authenticator() -> Authenticator:
    s = get_settings()
    if s.jwks_url:
        verifier = TokenVerifier(issuer=s.jwt_issuer, audience=s.jwt_audience, jwks_url=s.jwks_url)
    else:
        verifier = DevSigner(s.key_dir).verifier()
    return Authenticator(verifier=verifier, keys=ApiKeys(factory.tables()))
