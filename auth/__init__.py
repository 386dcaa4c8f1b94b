"""Authentication: bearer tokens -> Principal, development tokens, production startup checks."""
from auth.principal import Principal, PrincipalKind, principal_from_claims
from auth.startup_checks import check_startup, production_problems
from auth.tokens import TokenVerifier, bearer_token, bearer_token_from_payload

__all__ = [
    "Principal", "PrincipalKind", "TokenVerifier", "bearer_token", "bearer_token_from_payload",
    "check_startup", "principal_from_claims", "production_problems",
]
