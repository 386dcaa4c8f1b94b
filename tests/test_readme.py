"""The README's policy tables are generated from access/policy.py and must not drift from it."""
from pathlib import Path

from access.policy_table import BEGIN, END, with_policy

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_lists_the_policy_that_is_enforced() -> None:
    text = README.read_text()

    assert BEGIN in text and END in text
    assert text == with_policy(text), "README policy is stale: run `.venv/bin/python -m access.policy_table --write`"
