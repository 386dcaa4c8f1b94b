"""The README and docs/ stand alone: nothing they point to lies outside the repository, and every file they link
exists in it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
PAGES = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_a_page_references_nothing_outside_the_repository(page: Path) -> None:
    text = page.read_text()

    assert [marker for marker in ("../", "shared/", "/work/") if marker in text] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_of_a_page_is_a_file_of_the_repository(page: Path) -> None:
    targets = re.findall(r"\]\(([^)#\s]+)[^)]*\)", page.read_text())

    missing = [t for t in targets if "://" not in t and not (page.parent / t).resolve().is_file()]
    assert missing == []
