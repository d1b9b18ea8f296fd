"""Shared fixtures: deterministic keys, inner packets, spec factories."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import find_vectors_dir  # noqa: E402


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return find_vectors_dir()
