"""`me`: who the caller is, as the API sees them."""
from __future__ import annotations

import strawberry
from strawberry.types import Info

from auth.principal import Principal as SignedIn
from errors import Unauthenticated


@strawberry.type
class Principal:
    id: strawberry.ID
    kind: str
    username: str | None
    roles: list[str]
    groups: list[str]
    channel: str | None
    branch: str | None

    @classmethod
    def from_principal(cls, principal: SignedIn, channel: str | None) -> Principal:
        return cls(
            id=principal.subject, kind=principal.kind.value,
            username=principal.username, roles=sorted(principal.roles), groups=list(principal.groups),
            channel=channel, branch=principal.branch,
        )


@strawberry.type
class PrincipalQueries:
    @strawberry.field(description="Who the caller is: principal, roles, channel.")
    def me(self, info: Info) -> Principal:
        if info.context.principal is None:
            raise Unauthenticated("me needs a signed-in caller")
        return Principal.from_principal(info.context.principal, info.context.channel)
