"""The README tells the truth about settings and the two set-up commands."""

from __future__ import annotations

from pathlib import Path

from openify.settings import settings_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_settings_table_matches_the_code() -> None:
    start, end = "<!-- settings:start -->\n", "\n<!-- settings:end -->"
    table = README.split(start, 1)[1].split(end, 1)[0]
    assert table == settings_table(), "run `python -m openify.settings` and paste the table into README.md"


def test_two_setup_commands_are_there() -> None:
    assert "pip install -e . && openify serve" in README
    assert "pip install -e '.[test]' && python -m pytest" in README
