"""Fixtures of the gateway tests: a small manual-SA pair of gateways on one wire."""
from __future__ import annotations

from typing import Callable

import pytest
from gw_helpers import FIXED, small_config

from inline_ipsec.gateway import Gateway, WireLink


@pytest.fixture
def small_pair() -> Callable[..., tuple[Gateway, Gateway, WireLink]]:
    def make(extra_a: str = "", extra_b: str = "", **kw) -> tuple[Gateway, Gateway, WireLink]:
        a = Gateway.from_text(small_config("a", extra_a), name="gw-a", clock=lambda: FIXED, **kw)
        b = Gateway.from_text(small_config("b", extra_b), name="gw-b", clock=lambda: FIXED, **kw)
        return a, b, WireLink(a, b)
    return make
