"""The README's policy tables are generated from access/policy.py and must not drift from it."""
from pathlib import Path

from access.policy_table import BEGIN, END, with_policy

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_lists_the_policy_that_is_enforced() -> None:
    text = README.read_text()

    assert BEGIN in text and END in text
    assert text == with_policy(text), "README policy is stale: run `.venv/bin/python -m access.policy_table --write`"


def test_the_readme_lists_the_panel_case_types_that_are_served() -> None:
    from access.panel_views import BEGIN as PANEL_BEGIN, END as PANEL_END, with_panel_case_types

    text = README.read_text()

    assert PANEL_BEGIN in text and PANEL_END in text
    assert text == with_panel_case_types(text), "run `.venv/bin/python -m access.panel_views --write`"
