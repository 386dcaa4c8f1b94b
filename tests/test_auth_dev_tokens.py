"""Development tokens: every demo persona signs in as itself in dev, and nowhere else."""
from __future__ import annotations

from datetime import timedelta

import pytest

from auth.dev_tokens import PERSONAS, DevTokensDisabled, main, mint_dev_token
from auth.principal import PrincipalKind
from auth.tokens import TokenVerifier, bearer_token
from errors import Unauthenticated
from settings import Settings

DEV = Settings(app_env="dev")


@pytest.mark.parametrize("persona", PERSONAS, ids=lambda persona: persona.name)
async def test_each_persona_token_verifies_as_that_persona_in_dev(persona) -> None:
    token = mint_dev_token(DEV, persona.name)

    principal = await TokenVerifier(DEV).verify(token)

    expected_kind = (PrincipalKind.SYSTEM if persona.system else
                     PrincipalKind.CUSTOMER if persona.customer_id else PrincipalKind.EMPLOYEE)
    assert (principal.kind, principal.username, principal.roles, principal.groups, principal.channel,
            principal.branch) == (expected_kind, persona.username, frozenset(persona.roles), persona.groups,
                                  persona.channel, persona.branch)


async def test_the_branch_advisor_persona_is_an_advisor_of_krk_01() -> None:
    principal = await TokenVerifier(DEV).verify(mint_dev_token(DEV, "advisor"))

    assert (principal.kind, principal.roles, principal.channel, principal.branch) == (
        PrincipalKind.EMPLOYEE, frozenset({"case-reader", "advisor"}), "BRANCH", "KRK-01")


async def test_the_system_publisher_persona_is_a_system_principal() -> None:
    principal = await TokenVerifier(DEV).verify(mint_dev_token(DEV, "system-publisher"))

    assert (principal.kind, principal.username, principal.roles) == (
        PrincipalKind.SYSTEM, "case-publisher", frozenset({"system-publisher"}))


async def test_dev_tokens_carry_the_configured_issuer_and_audience() -> None:
    settings = DEV.with_overrides(auth_issuer="https://sso.bank.example/realms/staff", auth_audience="case-repository")

    principal = await TokenVerifier(settings).verify(mint_dev_token(settings, "auditor"))

    assert principal.username == "tomasz.kaminski"


async def test_a_dev_token_past_its_ttl_is_refused() -> None:
    token = mint_dev_token(DEV, "advisor", ttl=timedelta(minutes=-5))

    with pytest.raises(Unauthenticated, match="^invalid token: expired$"):
        await TokenVerifier(DEV).verify(token)


async def test_a_dev_token_signed_with_another_dev_secret_is_refused() -> None:
    token = mint_dev_token(DEV.with_overrides(auth_dev_secret="someone-elses-dev-secret-0123456789"), "advisor")

    with pytest.raises(Unauthenticated, match="^invalid token: signature$"):
        await TokenVerifier(DEV).verify(token)


def test_minting_is_refused_outside_dev() -> None:
    with pytest.raises(DevTokensDisabled):
        mint_dev_token(Settings(app_env="prod"), "advisor")


@pytest.fixture
def dev_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APP_ENV", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_DEV_SECRET", "AUTH_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)


async def test_the_command_prints_a_ready_to_paste_header_for_every_persona(dev_env, capsys) -> None:
    assert main([]) == 0

    lines = capsys.readouterr().out.splitlines()
    headers = [line.removeprefix("Authorization: ") for line in lines if line.startswith("Authorization: Bearer ")]
    comments = [line.split(":")[0] for line in lines if line.startswith("# ")]
    assert comments == [f"# {persona.name}" for persona in PERSONAS]
    principals = [await TokenVerifier(DEV).verify(bearer_token(header)) for header in headers]
    assert [principal.username for principal in principals] == [persona.username for persona in PERSONAS]


def test_the_command_prints_one_persona(dev_env, capsys) -> None:
    assert main(["call-center"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("Authorization: Bearer ") and out.count("\n") == 1


def test_the_command_refuses_in_prod(dev_env, monkeypatch, capsys) -> None:
    monkeypatch.setenv("APP_ENV", "prod")

    assert main([]) == 1

    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "error: development tokens are only minted when APP_ENV=dev\n")
