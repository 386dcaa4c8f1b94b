"""A token is checked once and then remembered, but never past its expiry or a minute."""
from __future__ import annotations

import pytest

import auth.tokens as tokens
from auth.tokens import TokenVerifier
from settings import Settings
from tests.factories import token


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = tokens.jwt.decode

    def counting(raw: str, *args, **kwargs):
        seen.append(raw)
        return real(raw, *args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting)
    return seen


async def test_the_same_token_is_checked_once(decodes: list[str]) -> None:
    verifier, raw = TokenVerifier(Settings()), token()

    first = await verifier.verify(raw)
    again = await verifier.verify(raw)

    assert again == first
    assert decodes == [raw]


async def test_a_remembered_token_is_checked_again_after_a_minute(decodes, monkeypatch) -> None:
    verifier, raw = TokenVerifier(Settings()), token()
    await verifier.verify(raw)
    later = tokens.time.monotonic() + tokens.REMEMBER_SECONDS + 1
    monkeypatch.setattr(tokens.time, "monotonic", lambda: later)

    await verifier.verify(raw)

    assert decodes == [raw, raw]


async def test_a_forged_token_is_never_remembered(decodes) -> None:
    verifier, raw = TokenVerifier(Settings()), token()
    header, payload, signature = raw.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"

    for _ in range(2):
        with pytest.raises(tokens.Unauthenticated):
            await verifier.verify(forged)

    assert decodes == [forged, forged]


async def test_the_public_dev_secret_is_refused_against_a_real_store() -> None:
    """APP_ENV forgotten (dev) on a real MongoDB: tokens signed with the published dev secret get nowhere."""
    verifier = TokenVerifier(Settings(mongodb_uri="mongodb://db.bank.internal:27017"))

    with pytest.raises(tokens.Unauthenticated):
        await verifier.verify(token())
