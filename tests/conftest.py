"""Suite-wide pytest options (pytest reads ``pytest_addoption`` only from conftest files loaded at startup)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help="reliability suite at full size: 10,000 requests at concurrency 256 (default: 1,000 at 64)",
    )
