"""Console tests: helpers live in tui_helpers.py (imported by name, so they must not be
in a conftest.py: every test folder has one, and ``import conftest`` is ambiguous)."""
