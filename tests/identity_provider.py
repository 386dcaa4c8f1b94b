"""A local identity provider (Keycloak as the app sees it): its signing key, the issuer and audience the app is
configured with, tokens signed by it, forgeries of them, and its JWKS endpoint on 127.0.0.1 in the test's own
event loop. The `jwks_url` fixture that serves it is in conftest.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://sso.bank.example/realms/staff"
AUDIENCE = "case-repository"
KID = "staff-rsa-1"
IDP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    """The JWKS entry that publishes an RSA (RS256) or EC (ES256) key's public half under `kid`."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk, alg = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True), "RS256"
    else:
        jwk, alg = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True), "ES256"
    return jwk | {"kid": kid, "use": "sig", "alg": alg}


def signed(payload: dict[str, Any], key: Any = IDP_KEY, kid: str = KID, alg: str = "RS256") -> str:
    """A JWT of these claims, signed by the identity provider unless another key is given."""
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def public_pem(private_key: Any = IDP_KEY) -> bytes:
    """The public key as anyone can fetch it: the secret of the key-confusion attack."""
    return private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_forged(secret: bytes, payload: dict[str, Any], kid: str = KID) -> str:
    """HS256 by hand: pyjwt refuses to sign with a PEM key, an attacker does not."""
    signing_input = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + "." \
        + b64url(json.dumps(payload).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


@asynccontextmanager
async def serving_jwks() -> AsyncIterator[str]:
    """Serve the identity provider's key set; yields its URL."""
    keys = [public_jwk(IDP_KEY, KID)]

    async def certs(request: web.Request) -> web.Response:
        return web.json_response({"keys": keys})

    app = web.Application()
    app.router.add_get("/certs", certs)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/certs"))
