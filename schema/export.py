"""Print the SDL that `graphql/schema.graphql` must hold: `python -m schema.export`."""
from __future__ import annotations

from schema.build import build_schema


def sdl() -> str:
    return build_schema().as_str() + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
