"""Generated parts of the documentation: text between two markers, rewritten from the data it shows.

`make schema` rewrites them (the policy table in README.md, the lifecycle table in docs/lifecycle.md); tests
compare each with the data, so the documentation cannot drift from what the code does.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def with_section(text: str, begin: str, end: str, body: str) -> str:
    """`text` with what stands between the `begin` and `end` markers replaced by `body`."""
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main(path: Path, begin: str, end: str, render: Callable[[], str]) -> None:
    """`--write`: rewrite the section in `path`; otherwise print it."""
    if sys.argv[1:] == ["--write"]:
        path.write_text(with_section(path.read_text(), begin, end, render()))
    else:
        print(f"{begin}\n{render()}\n{end}")
