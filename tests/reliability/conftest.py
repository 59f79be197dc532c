"""Options of the reliability suite: ``--full`` runs it at full size (see test_reliability.py).

The option itself is declared in ``tests/conftest.py``: ``.venv/bin/python -m pytest --full``.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def full(request: pytest.FixtureRequest) -> bool:
    """True when the suite runs at full size (``--full``)."""
    value = request.config.getoption("--full", default=False)
    return bool(value)
