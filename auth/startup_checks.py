"""Refuse to start in production on development defaults (CONTRACT §1, APP_ENV=prod).

Settings.from_env fills AUTH_DEV_SECRET and DATA_ENCRYPTION_KEY with the public dev defaults when they
are unset, so "still the default" and "unset" look the same here. For the dev secret that is harmless
(HS256 is never honoured in prod), so only a secret someone actually set is reported; for the
encryption key both mean "no real key" and are reported.
"""
from __future__ import annotations

import base64
import binascii
from urllib.parse import urlparse

from settings import DEV_AUTH_SECRET, DEV_ENCRYPTION_KEY, Settings
from stores.protection import KeyRing

APP_ENVS = ("dev", "prod")
DATA_KEY_BYTES = 32


def production_problems(settings: Settings) -> list[str]:
    """Every reason this configuration must not serve production traffic; empty when fine or in dev."""
    if settings.is_dev:
        return []
    problems: list[str] = []
    if settings.app_env not in APP_ENVS:
        # Anything but "dev" runs with production rules, so a typo like "production" fails closed.
        problems.append(f"APP_ENV={settings.app_env!r} is not one of {', '.join(APP_ENVS)}")
    if settings.auth_dev_secret != DEV_AUTH_SECRET:
        problems.append("AUTH_DEV_SECRET is set, but HS256 development tokens are never honoured outside "
                        "APP_ENV=dev; remove it")
    problems.extend(_encryption_key_problems(settings.data_encryption_key))
    if settings.embedded_store and not settings.allow_embedded:
        problems.append("MONGODB_URI is unset: the in-memory store loses every case on restart; set MONGODB_URI "
                        "(or ALLOW_EMBEDDED=1 to accept that)")
    problems.extend(_identity_provider_problems(settings))
    return problems


def check_startup(settings: Settings) -> None:
    """Raise SystemExit listing every production problem, so the operator fixes them in one go."""
    problems = production_problems(settings)
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise SystemExit(f"refusing to start with APP_ENV={settings.app_env}:\n{lines}")


def _encryption_key_problems(key: str) -> list[str]:
    if key == DEV_ENCRYPTION_KEY:
        return ["DATA_ENCRYPTION_KEY is unset or the public development key; set a secret key "
                f"(base64 of {DATA_KEY_BYTES} random bytes)"]
    try:
        KeyRing.from_setting(key)
    except ValueError as error:
        return [str(error)]
    # A rotation list must not smuggle the public key back in under a key id.
    dev_key = base64.b64decode(DEV_ENCRYPTION_KEY)
    if any(entry.split(":", 1)[-1].strip() and _decodes_to(entry.split(":", 1)[-1], dev_key) for entry in key.split(",")):
        return ["DATA_ENCRYPTION_KEY contains the public development key"]
    return []


def _decodes_to(text: str, raw: bytes) -> bool:
    try:
        return base64.b64decode(text.strip(), validate=True) == raw
    except (binascii.Error, ValueError):
        return False


def _identity_provider_problems(settings: Settings) -> list[str]:
    problems = [f"{name} is unset: employee tokens cannot be verified without it"
                for name, value in (("AUTH_JWKS_URL", settings.auth_jwks_url), ("AUTH_ISSUER", settings.auth_issuer),
                                    ("AUTH_AUDIENCE", settings.auth_audience))
                if not value]
    if settings.auth_jwks_url and urlparse(settings.auth_jwks_url).scheme not in ("http", "https"):
        problems.append("AUTH_JWKS_URL must be an http(s) URL")
    return problems
