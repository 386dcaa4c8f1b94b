"""Bearer tokens: forged ones are refused with UNAUTHENTICATED, genuine ones become the right Principal.

The JWKS is served by a real aiohttp server on 127.0.0.1 in the test's own event loop: if a JWKS
fetch ever blocked the loop, that server could not answer and these tests would time out.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auth.dev_tokens import mint_dev_token
from auth.jwks import JwksKeys
from auth.principal import Principal, PrincipalKind
from auth.tokens import TokenVerifier, bearer_token, bearer_token_from_payload
from errors import Unauthenticated
from settings import Settings
from tests.identity_provider import AUDIENCE, ISSUER, b64url, hs256_forged, public_jwk, public_pem

SUBJECT = "8d3c2a57-5d0e-4a7e-9c55-3f1f0b7f2c11"
DROP = object()  # claims(exp=DROP) leaves the claim out

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROTATED_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a Keycloak access token for a branch advisor; override or DROP any of them."""
    now = int(time.time())
    base = {
        "iss": ISSUER, "aud": [AUDIENCE, "account"], "sub": SUBJECT, "azp": "case-ui", "typ": "Bearer",
        "iat": now, "exp": now + 300, "jti": "token-1", "preferred_username": "anna.nowak",
        "realm_access": {"roles": ["case-reader", "advisor"]},
        "resource_access": {AUDIENCE: {"roles": ["case-writer"]}, "account": {"roles": ["manage-account"]}},
        "groups": ["/branches/KRK-01"], "channel": "BRANCH", "branch": "KRK-01",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not DROP}


def sign(payload: dict[str, Any], key: Any = RSA_KEY, kid: str = "rsa-1", alg: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def tampered() -> str:
    """A genuine signature under a payload that grants more roles."""
    header, _, signature = sign(claims()).split(".")
    return f"{header}.{b64url(json.dumps(claims(realm_access={'roles': ['pii-reader']})).encode())}.{signature}"


def forged(case: str, make: Callable[[], str], reason: str) -> Any:
    # Tokens are made when the test runs, so a slow suite cannot turn "wrong iss" into "expired".
    return pytest.param(make, reason, id=case)


def advisor(exp: int) -> Principal:
    return Principal(kind=PrincipalKind.EMPLOYEE, subject=SUBJECT, username="anna.nowak",
                     roles=frozenset({"case-reader", "advisor", "case-writer"}), groups=("/branches/KRK-01",),
                     channel="BRANCH", branch="KRK-01", expires_at=datetime.fromtimestamp(exp, timezone.utc),
                     token_id="token-1")


async def denial(verifier: TokenVerifier, token: str) -> str:
    """Verify a token that must be refused; return the refusal message."""
    principal: Principal | None = None
    with pytest.raises(Unauthenticated) as refused:
        principal = await verifier.verify(token)
    assert refused.type is Unauthenticated
    assert principal is None
    assert token not in str(refused.value)
    return str(refused.value)


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@dataclass
class Jwks:
    """The identity provider's key endpoint: what it serves and how often it was asked."""
    keys: list[dict[str, Any]] = field(default_factory=lambda: [public_jwk(RSA_KEY, "rsa-1"),
                                                                public_jwk(EC_KEY, "ec-1")])
    url: str = ""
    fetches: int = 0
    healthy: bool = True
    hold: asyncio.Event | None = None  # when set, responses wait for it (a slow identity provider)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def jwks() -> AsyncIterator[Jwks]:
    state = Jwks()

    async def certs(request: web.Request) -> web.Response:
        state.fetches += 1
        keys = list(state.keys)
        if state.hold is not None:
            await state.hold.wait()
        if not state.healthy:
            return web.Response(status=503)
        return web.json_response({"keys": keys})

    app = web.Application()
    app.router.add_get("/realms/staff/protocol/openid-connect/certs", certs)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/realms/staff/protocol/openid-connect/certs"))
        yield state


@pytest.fixture
def prod_settings(jwks: Jwks) -> Settings:
    return Settings(app_env="prod", auth_jwks_url=jwks.url, auth_issuer=ISSUER, auth_audience=AUDIENCE)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def verifier(prod_settings: Settings, jwks: Jwks, clock: FakeClock) -> AsyncIterator[TokenVerifier]:
    token_verifier = TokenVerifier(prod_settings, jwks=JwksKeys(jwks.url, clock=clock))
    await token_verifier.start()
    yield token_verifier
    await token_verifier.close()


async def test_a_valid_rs256_token_becomes_the_employee_with_realm_and_client_roles(verifier, jwks) -> None:
    payload = claims()

    principal = await verifier.verify(sign(payload))

    assert principal == advisor(payload["exp"])
    assert principal.has_role("case-writer") and not principal.has_role("manage-account")
    assert jwks.fetches == 1


async def test_a_valid_es256_token_becomes_the_employee(verifier) -> None:
    payload = claims(resource_access=DROP)

    principal = await verifier.verify(sign(payload, EC_KEY, kid="ec-1", alg="ES256"))

    assert principal == replace(advisor(payload["exp"]), roles=frozenset({"case-reader", "advisor"}))


async def test_a_token_expired_within_the_leeway_is_still_accepted(verifier) -> None:
    payload = claims(exp=int(time.time()) - 10)

    assert await verifier.verify(sign(payload)) == advisor(payload["exp"])


@pytest.mark.parametrize(("make_token", "reason"), [
    forged("alg none", lambda: jwt.encode(claims(), None, algorithm="none", headers={"kid": "rsa-1"}),
           "invalid token: algorithm"),
    forged("alg HS512", lambda: jwt.encode(claims(), "x" * 64, algorithm="HS512"), "invalid token: algorithm"),
    forged("wrong key", lambda: sign(claims(), ATTACKER_RSA_KEY), "invalid token: signature"),
    forged("RSA public key as HS256 secret", lambda: hs256_forged(public_pem(RSA_KEY), claims(), kid="rsa-1"),
           "invalid token: algorithm"),
    forged("tampered payload", tampered, "invalid token: signature"),
    forged("expired", lambda: sign(claims(exp=int(time.time()) - 120)), "invalid token: expired"),
    forged("not yet valid", lambda: sign(claims(nbf=int(time.time()) + 600)), "invalid token: not yet valid"),
    forged("missing exp", lambda: sign(claims(exp=DROP)), "invalid token: missing claim exp"),
    forged("missing sub", lambda: sign(claims(sub=DROP)), "invalid token: missing claim sub"),
    forged("missing aud", lambda: sign(claims(aud=DROP)), "invalid token: missing claim aud"),
    forged("wrong aud", lambda: sign(claims(aud=["account", "other-api"])), "invalid token: audience"),
    forged("missing iss", lambda: sign(claims(iss=DROP)), "invalid token: missing claim iss"),
    forged("wrong iss", lambda: sign(claims(iss="https://sso.bank.example/realms/other")), "invalid token: issuer"),
    forged("RSA kid claimed as ES256", lambda: sign(claims(), EC_KEY, kid="rsa-1", alg="ES256"),
           "invalid token: unknown key"),
    forged("no kid", lambda: jwt.encode(claims(), RSA_KEY, algorithm="RS256"), "invalid token: missing key id"),
    forged("not a JWT", lambda: "not-a-jwt", "invalid token: malformed"),
    forged("oversized", lambda: "e" * 20_000, "invalid token: malformed"),
    forged("roles of the wrong shape", lambda: sign(claims(realm_access={"roles": "case-reader"})),
           "invalid token: claim realm_access"),
    forged("unknown channel", lambda: sign(claims(channel="SOCIAL_MEDIA")), "invalid token: claim channel"),
])
async def test_a_forged_or_invalid_token_is_refused(verifier, make_token, reason) -> None:
    assert await denial(verifier, make_token()) == reason


async def test_a_hs256_dev_token_is_refused_in_prod(verifier) -> None:
    token = mint_dev_token(Settings(app_env="dev", auth_issuer=ISSUER, auth_audience=AUDIENCE), "advisor")

    assert await denial(verifier, token) == "invalid token: algorithm"


@pytest.fixture
async def dev_verifier(jwks: Jwks) -> AsyncIterator[TokenVerifier]:
    token_verifier = TokenVerifier(Settings(app_env="dev", auth_jwks_url=jwks.url, auth_issuer=ISSUER,
                                            auth_audience=AUDIENCE))
    await token_verifier.start()
    yield token_verifier
    await token_verifier.close()


async def test_in_dev_hs256_signed_with_the_rsa_public_key_fails_the_signature(dev_verifier) -> None:
    token = hs256_forged(public_pem(RSA_KEY), claims(), kid="rsa-1")

    assert await denial(dev_verifier, token) == "invalid token: signature"


async def test_in_dev_both_dev_tokens_and_keycloak_tokens_are_accepted(dev_verifier) -> None:
    payload = claims()
    dev_token = mint_dev_token(Settings(app_env="dev", auth_issuer=ISSUER, auth_audience=AUDIENCE), "advisor")

    assert await dev_verifier.verify(sign(payload)) == advisor(payload["exp"])
    assert (await dev_verifier.verify(dev_token)).username == "anna.nowak"


async def test_ten_concurrent_unknown_kids_share_one_jwks_fetch_then_are_rate_limited(verifier, jwks, clock) -> None:
    token = sign(claims(), ATTACKER_RSA_KEY, kid="made-up")
    assert jwks.fetches == 1  # the warm-up at start()

    reasons = await asyncio.gather(*(denial(verifier, token) for _ in range(10)))

    assert reasons == ["invalid token: unknown key"] * 10
    assert jwks.fetches == 2
    clock.now += 59
    assert await denial(verifier, token) == "invalid token: unknown key"
    assert jwks.fetches == 2
    clock.now += 1
    assert await denial(verifier, token) == "invalid token: unknown key"
    assert jwks.fetches == 3


async def test_a_rotated_key_is_accepted_after_one_refetch(verifier, jwks) -> None:
    jwks.keys.append(public_jwk(ROTATED_RSA_KEY, "rsa-2"))
    payload = claims()

    token = sign(payload, ROTATED_RSA_KEY, kid="rsa-2")

    concurrent = await asyncio.gather(*(verifier.verify(token) for _ in range(10)))
    later = await verifier.verify(token)

    assert concurrent == [advisor(payload["exp"])] * 10 and later == advisor(payload["exp"])
    assert jwks.fetches == 2


async def test_a_withdrawn_key_stops_working_once_the_key_set_is_refreshed(verifier, jwks, clock) -> None:
    jwks.keys = [public_jwk(ROTATED_RSA_KEY, "rsa-2")]
    clock.now += 301
    payload = claims()

    # Stale keys keep serving while the refresh runs in the background.
    assert await verifier.verify(sign(payload)) == advisor(payload["exp"])
    await wait_until(lambda: jwks.fetches == 2 and verifier.ready)

    assert await denial(verifier, sign(payload)) == "invalid token: unknown key"


async def test_a_key_published_during_a_background_refresh_is_fetched_once_more(verifier, jwks, clock) -> None:
    clock.now += 301
    jwks.hold = asyncio.Event()
    payload = claims()
    assert await verifier.verify(sign(payload)) == advisor(payload["exp"])  # starts the background refresh
    await wait_until(lambda: jwks.fetches == 2)  # the provider answered with the key set before rotation
    jwks.keys.append(public_jwk(ROTATED_RSA_KEY, "rsa-2"))

    rotated = asyncio.create_task(verifier.verify(sign(payload, ROTATED_RSA_KEY, kid="rsa-2")))
    await wait_until(lambda: jwks.fetches == 2 and not rotated.done())
    jwks.hold.set()

    assert await rotated == advisor(payload["exp"])
    assert jwks.fetches == 3


async def test_jwks_down_at_startup_is_retried_on_the_first_token(prod_settings, jwks) -> None:
    jwks.healthy = False
    token_verifier = TokenVerifier(prod_settings)
    await token_verifier.start()
    assert token_verifier.ready is False
    jwks.healthy = True
    payload = claims()

    principal = await token_verifier.verify(sign(payload))

    assert principal == advisor(payload["exp"])
    assert token_verifier.ready is True and jwks.fetches == 2
    await token_verifier.close()


async def test_a_client_credentials_token_is_a_system_principal(verifier) -> None:
    payload = claims(preferred_username="service-account-process-engine", client_id="process-engine",
                     azp="process-engine", realm_access={"roles": ["system-publisher"]}, resource_access=DROP,
                     groups=DROP, channel=DROP, branch=DROP, jti=DROP)

    principal = await verifier.verify(sign(payload))

    assert principal == Principal(kind=PrincipalKind.SYSTEM, subject=SUBJECT, username="process-engine",
                                  roles=frozenset({"system-publisher"}), groups=(), channel=None, branch=None,
                                  expires_at=datetime.fromtimestamp(payload["exp"], timezone.utc))


async def test_a_jwt_that_claims_to_be_a_panel_token_is_refused(verifier) -> None:
    """Only a live panelLogin session signs a participant in (auth/panel_tokens.py), never a signed claim."""
    payload = claims(token_use="panel", case_id="CASE-1", participant_id="P-2", channel=DROP, branch=DROP,
                     groups=DROP, preferred_username=DROP)

    with pytest.raises(Unauthenticated, match="^invalid token: panel sessions are opened by panelLogin only$"):
        await verifier.verify(sign(payload))


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc.def.ghi", "abc.def.ghi"),
    ("bearer   abc.def.ghi  ", "abc.def.ghi"),
    (None, None), ("", None), ("Bearer", None), ("Bearer ", None), ("Basic dXNlcjpwYXNz", None),
    ("Bearer abc def", None),
])
def test_bearer_token_reads_only_a_bearer_authorization_header(header, token) -> None:
    assert bearer_token(header) == token


def test_bearer_token_from_a_websocket_connection_init_payload() -> None:
    assert bearer_token_from_payload({"Authorization": "Bearer abc.def.ghi"}) == "abc.def.ghi"
    assert bearer_token_from_payload({"authorization": "Bearer abc.def.ghi"}) == "abc.def.ghi"
    assert bearer_token_from_payload({"token": "abc.def.ghi"}) is None
    assert bearer_token_from_payload(None) is None
