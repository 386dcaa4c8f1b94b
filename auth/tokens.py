"""Bearer token verification (CONTRACT §4): algorithm allow-list, signature, registered claims.

Which key verifies a token is decided by the token's `alg` header *and* our configuration, never by
the token alone: RS256/ES256 only with a key from AUTH_JWKS_URL whose own algorithm matches, HS256
only with AUTH_DEV_SECRET and only when APP_ENV=dev, anything else (including `none`) is refused.
Header fields that point at other keys (`jku`, `x5u`, `jwk`) are ignored. Error messages name the
failed check but never echo the token or its claims.
"""
from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jwt

from auth.jwks import JWKS_ALGORITHMS, JwksKeys
from auth.panel_tokens import PanelSessionVerifier, is_panel_token
from auth.principal import Principal, principal_from_claims
from errors import Unauthenticated
from settings import Settings

DEV_ALGORITHM = "HS256"
LEEWAY_SECONDS = 30  # clock skew between Keycloak and us
# Keycloak tokens with many groups reach a few kB; anything far bigger is not a token we issue.
MAX_TOKEN_LENGTH = 16_384
# Keycloak's key ids are UUIDs or short hashes; an unknown kid makes the key set be fetched again, so a long one is
# refused before it can cost a fetch.
MAX_KID_LENGTH = 128
# A JWS compact serialisation: three base64url segments. Anything else (non-ASCII, bytes the header could not carry
# as text) is malformed before any decoder sees it.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Decoders' own errors on input that is not a token at all (a JSON number too big, a claim of the wrong type): still
# "malformed", never a 500.
_UNDECODABLE = (ValueError, TypeError, OverflowError, UnicodeError, KeyError, AttributeError, RecursionError)
REMEMBER_SECONDS = 60.0
REMEMBER_MAX_TOKENS = 10_000
_WHITESPACE = re.compile(r"\s")

_CLAIM_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not yet valid"),
    (jwt.InvalidSignatureError, "signature"),
    (jwt.InvalidAudienceError, "audience"),
    (jwt.InvalidIssuerError, "issuer"),
    (jwt.InvalidAlgorithmError, "algorithm"),
)


def bearer_token(authorization_header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, or None when there is none."""
    if not authorization_header:
        return None
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or _WHITESPACE.search(token) is not None:
        return None
    return token


def bearer_token_from_payload(payload: object) -> str | None:
    """The token of a WebSocket `connection_init` payload `{"Authorization": "Bearer <jwt>"}`."""
    if not isinstance(payload, Mapping):
        return None
    for key, value in payload.items():
        if isinstance(key, str) and key.lower() == "authorization" and isinstance(value, str):
            return bearer_token(value)
    return None


class TokenVerifier:
    """Turns a bearer token into a Principal or raises errors.Unauthenticated."""

    def __init__(self, settings: Settings, *, jwks: JwksKeys | None = None,
                 panel_sessions: PanelSessionVerifier | None = None) -> None:
        self._settings = settings
        self._panel_sessions = panel_sessions
        if jwks is None and settings.auth_jwks_url:
            jwks = JwksKeys(settings.auth_jwks_url)
        self._jwks = jwks
        # token -> (principal, monotonic deadline): a dashboard sends the same token on every request, and
        # checking its signature is most of what security costs a cached read (bench R2).
        self._verified: OrderedDict[str, tuple[Principal, float, str | None]] = OrderedDict()

    @property
    def ready(self) -> bool:
        """False while employee keys are configured but not loaded yet."""
        return self._jwks is None or self._jwks.loaded

    async def start(self) -> None:
        """Warm the JWKS cache (in a worker thread) so the first request does not wait for it."""
        if self._jwks is not None:
            await self._jwks.load()

    async def close(self) -> None:
        if self._jwks is not None:
            await self._jwks.close()

    async def verify(self, token: str) -> Principal:
        """Check the token and return its principal; raise Unauthenticated saying which check failed."""
        if isinstance(token, str) and is_panel_token(token) and len(token) <= MAX_TOKEN_LENGTH and token.isascii():
            # Never remembered: a logout or an idle timeout must hold from the next request on.
            if self._panel_sessions is None:
                raise Unauthenticated("invalid token: malformed")
            return await self._panel_sessions.verify(token)
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, deadline, kid = remembered
            key_still_published = kid is None or (self._jwks is not None and self._jwks.holds(kid))
            if time.monotonic() < deadline and not principal.is_expired() and key_still_published:
                return principal
            del self._verified[token]
        header = _header(token)
        algorithm, key = await self._key_for(header)
        claims = self._decode(token, key, algorithm)
        try:
            principal = principal_from_claims(claims, self._settings.auth_audience)
        except _UNDECODABLE as error:  # e.g. an `exp` of 1e20: past every date a datetime can hold
            raise Unauthenticated("invalid token: a claim is out of range") from error
        # Forgotten when its signing key leaves the key set, and re-checked at least every REMEMBER_SECONDS.
        kid = header.get("kid") if algorithm != DEV_ALGORITHM else None
        self._verified[token] = (principal, time.monotonic() + REMEMBER_SECONDS, kid)
        if len(self._verified) > REMEMBER_MAX_TOKENS:
            self._verified.popitem(last=False)
        return principal

    async def _key_for(self, header: Mapping[str, Any]) -> tuple[str, Any]:
        algorithm = header.get("alg")
        if algorithm == DEV_ALGORITHM and self._settings.dev_tokens_accepted:
            return algorithm, self._settings.auth_dev_secret
        if not isinstance(algorithm, str) or algorithm not in JWKS_ALGORITHMS:
            raise Unauthenticated("invalid token: algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("invalid token: missing key id")
        if len(kid) > MAX_KID_LENGTH:
            raise Unauthenticated("invalid token: key id too long")
        jwk = await self._jwks.key(kid) if self._jwks is not None else None
        # The key's own algorithm must match: an RSA key never verifies an ES256 (or HS256) claim.
        if jwk is None or jwk.algorithm_name != algorithm:
            raise Unauthenticated("invalid token: unknown key")
        return algorithm, jwk.key

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        issuer, audience = self._settings.auth_issuer, self._settings.auth_audience
        try:
            return jwt.decode(
                token, key, algorithms=[algorithm], issuer=issuer, audience=audience, leeway=LEEWAY_SECONDS,
                # Unset AUTH_ISSUER/AUTH_AUDIENCE means "not checked" (dev); set means "must match".
                options={"require": ["exp", "sub"], "verify_iss": issuer is not None,
                         "verify_aud": audience is not None},
            )
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"invalid token: missing claim {error.claim}") from error
        except jwt.PyJWTError as error:
            reason = next((text for kind, text in _CLAIM_ERRORS if isinstance(error, kind)), "malformed")
            raise Unauthenticated(f"invalid token: {reason}") from error
        except _UNDECODABLE as error:  # PyJWT lets e.g. OverflowError of `exp: 1e400` (infinity) through
            raise Unauthenticated("invalid token: malformed") from error


def _header(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or not _COMPACT_JWS.fullmatch(token):
        raise Unauthenticated("invalid token: malformed")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, *_UNDECODABLE) as error:
        raise Unauthenticated("invalid token: malformed") from error
    if not isinstance(header, dict):
        raise Unauthenticated("invalid token: malformed")
    return header
