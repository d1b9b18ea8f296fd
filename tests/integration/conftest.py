"""Fixtures of the two-gateway tests."""
from __future__ import annotations

import pytest
from pair_helpers import make_pair

from inline_ipsec.gateway import Gateway, WireLink


@pytest.fixture
def pair() -> tuple[Gateway, Gateway, WireLink]:
    a, b = make_pair()
    return a, b, WireLink(a, b)
