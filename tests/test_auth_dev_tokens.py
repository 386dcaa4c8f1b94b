"""Development tokens: every demo persona signs in as itself in dev, and nowhere else."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from auth.dev_tokens import PERSONAS, DevTokensDisabled, main, mint_dev_token
from auth.principal import PrincipalKind
from auth.tokens import TokenVerifier, bearer_token
from errors import Unauthenticated
from server import print_dev_tokens
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


def without_tokens(text: str) -> str:
    """The output with each token replaced by <token>: tokens differ per run (iat, jti), the rest must not."""
    return re.sub(r"Bearer [A-Za-z0-9_.-]+", "Bearer <token>", text)


async def test_the_command_prints_for_every_persona_the_json_graphiqls_headers_tab_takes(dev_env, capsys) -> None:
    assert main([]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert without_tokens("\n".join(lines[:6])) == (
        "# advisor: branch advisor in Kraków (KRK-01) (case-reader, advisor)\n"
        '{"Authorization": "Bearer <token>"}\n'
        "\n"
        "# advisor-waw: branch advisor in Warsaw (WAW-01): same role, other branch (case-reader, advisor)\n"
        '{"Authorization": "Bearer <token>"}\n')
    assert [line.split(":")[0] for line in lines if line.startswith("# ")] == [
        "# advisor", "# advisor-waw", "# call-center", "# back-office", "# team-manager", "# operations-manager",
        "# auditor", "# pii-officer", "# no-roles", "# customer-anna", "# customer-piotr", "# system-publisher"]
    pasted = [json.loads(line) for line in lines if line.startswith("{")]
    assert [list(headers) for headers in pasted] == [["Authorization"]] * 12
    principals = [await TokenVerifier(DEV).verify(bearer_token(headers["Authorization"])) for headers in pasted]
    assert [principal.username for principal in principals] == [
        "anna.nowak", "piotr.zielinski", "ewa.kowalska", "jan.wisniewski", "maria.wojcik", "barbara.wozniak",
        "tomasz.kaminski", "katarzyna.lewandowska", "adam.dabrowski", "anna.kowalska", "piotr.nowak",
        "case-publisher"]


def test_make_run_prints_the_same_lines_as_the_command(dev_env, capsys) -> None:
    main([])
    command = capsys.readouterr().out

    print_dev_tokens(DEV)

    printed = capsys.readouterr().out
    assert without_tokens(printed) == (
        "Dev tokens: paste one persona's JSON line into GraphiQL > Headers "
        "(again later: .venv/bin/python -m auth.dev_tokens)\n" + without_tokens(command))


def test_the_command_prints_one_persona(dev_env, capsys) -> None:
    assert main(["call-center"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("Authorization: Bearer ") and out.count("\n") == 1


def test_the_command_refuses_in_prod(dev_env, monkeypatch, capsys) -> None:
    monkeypatch.setenv("APP_ENV", "prod")

    assert main([]) == 1

    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "error: development tokens are only minted when APP_ENV=dev\n")
