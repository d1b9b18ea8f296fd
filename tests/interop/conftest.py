import os
import sys

import pytest
from helpers import missing

_HERE = os.path.dirname(__file__)
_SRC = os.path.abspath(os.path.join(_HERE, "..", "..", "src"))
for p in (_SRC, _HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

from charon_harness import Charon, available  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "interop: needs a real strongSwan charon")


def _charon(tmp_path, extra=""):
    if not available():
        missing("strongSwan charon is not installed (/usr/lib/ipsec/charon)")
    c = Charon(tmp_path, extra)
    c.start()
    return c


@pytest.fixture
def charon(tmp_path):
    c = _charon(tmp_path)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def charon_small_fragments(tmp_path):
    """charon sending RFC 7383 fragments of at most 500 bytes (IP packet size)."""
    c = _charon(tmp_path, "fragment_size = 500")
    try:
        yield c
    finally:
        c.stop()
