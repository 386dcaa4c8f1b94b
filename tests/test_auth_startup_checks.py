"""APP_ENV=prod refuses to start on development defaults, naming every setting to fix."""
from __future__ import annotations

import base64

import pytest

from auth.startup_checks import check_startup, production_problems
from settings import Settings

PROD_ENV = {
    "APP_ENV": "prod",
    "MONGODB_URI": "mongodb://cases-db:27017",
    "AUTH_JWKS_URL": "https://sso.bank.example/realms/staff/protocol/openid-connect/certs",
    "AUTH_ISSUER": "https://sso.bank.example/realms/staff",
    "AUTH_AUDIENCE": "case-repository",
    "DATA_ENCRYPTION_KEY": base64.b64encode(bytes(range(32))).decode(),
}

DEV_KEY = "DATA_ENCRYPTION_KEY is unset or the public development key; set a secret key (base64 of 32 random bytes)"
NO_STORE = ("MONGODB_URI is unset: the in-memory store loses every case on restart; set MONGODB_URI "
            "(or ALLOW_EMBEDDED=1 to accept that)")
DEV_SECRET = ("AUTH_DEV_SECRET is set, but HS256 development tokens are never honoured outside APP_ENV=dev; "
              "remove it")


def unset(name: str) -> str:
    return f"{name} is unset: employee tokens cannot be verified without it"


def prod(**changes: str | None) -> Settings:
    env = {**PROD_ENV, **changes}
    return Settings.from_env({name: value for name, value in env.items() if value is not None})


def test_a_complete_production_configuration_starts() -> None:
    assert production_problems(prod()) == []
    check_startup(prod())


def test_dev_never_complains() -> None:
    assert production_problems(Settings.from_env({})) == []


def test_prod_on_bare_defaults_lists_every_problem() -> None:
    settings = Settings.from_env({"APP_ENV": "prod"})

    assert production_problems(settings) == [
        DEV_KEY, NO_STORE, unset("AUTH_JWKS_URL"), unset("AUTH_ISSUER"), unset("AUTH_AUDIENCE"),
    ]


@pytest.mark.parametrize(("changes", "problem"), [
    ({"AUTH_DEV_SECRET": "a-real-looking-secret"}, DEV_SECRET),
    ({"DATA_ENCRYPTION_KEY": None}, DEV_KEY),
    ({"DATA_ENCRYPTION_KEY": "ZGV2LWtleS1jYXNlLXJlcG9zaXRvcnktMzItYnl0ZXM="}, DEV_KEY),
    ({"DATA_ENCRYPTION_KEY": "not base64!"}, "DATA_ENCRYPTION_KEY: the key is not valid base64"),
    ({"DATA_ENCRYPTION_KEY": base64.b64encode(bytes(16)).decode()},
     "DATA_ENCRYPTION_KEY: the key must decode to 32 bytes, got 16"),
    ({"DATA_ENCRYPTION_KEY": "k2:" + base64.b64encode(bytes(range(32))).decode()
      + ",k1:ZGV2LWtleS1jYXNlLXJlcG9zaXRvcnktMzItYnl0ZXM="},
     "DATA_ENCRYPTION_KEY contains the public development key"),
    ({"MONGODB_URI": None}, NO_STORE),
    ({"AUTH_JWKS_URL": None}, unset("AUTH_JWKS_URL")),
    ({"AUTH_ISSUER": None}, unset("AUTH_ISSUER")),
    ({"AUTH_AUDIENCE": None}, unset("AUTH_AUDIENCE")),
    ({"AUTH_JWKS_URL": "file:///etc/keys.json"}, "AUTH_JWKS_URL must be an http(s) URL"),
], ids=["dev secret set", "no encryption key", "dev encryption key", "key not base64", "16-byte key",
        "dev key in a rotation list",
        "in-memory store", "no JWKS URL", "no issuer", "no audience", "JWKS URL not http"])
def test_each_unsafe_setting_is_named(changes, problem) -> None:
    assert production_problems(prod(**changes)) == [problem]


def test_the_in_memory_store_is_allowed_in_prod_only_when_asked_for_explicitly() -> None:
    assert production_problems(prod(MONGODB_URI=None, ALLOW_EMBEDDED="1")) == []


def test_an_unknown_app_env_is_a_problem_and_gets_the_production_rules() -> None:
    settings = prod(APP_ENV="production", MONGODB_URI=None)

    assert production_problems(settings) == ["APP_ENV='production' is not one of dev, prod", NO_STORE]


def test_check_startup_exits_naming_every_problem() -> None:
    with pytest.raises(SystemExit) as exited:
        check_startup(prod(MONGODB_URI=None, AUTH_ISSUER=None))

    assert exited.value.code == f"refusing to start with APP_ENV=prod:\n  - {NO_STORE}\n  - {unset('AUTH_ISSUER')}"


@pytest.mark.parametrize("key", [
    "k1:" + base64.b64encode(bytes(range(32))).decode(),
    "k2:" + base64.b64encode(bytes(range(1, 33))).decode() + ",k1:" + base64.b64encode(bytes(range(32))).decode(),
], ids=["one key with its id", "rotation list"])
def test_the_documented_key_formats_start_in_production(key: str) -> None:
    assert production_problems(prod(DATA_ENCRYPTION_KEY=key)) == []
