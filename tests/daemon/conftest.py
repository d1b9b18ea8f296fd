import os
import sys

import pytest
from helpers import missing

_HERE = os.path.dirname(__file__)
for p in (os.path.abspath(os.path.join(_HERE, "..", "..", "src")), _HERE,
          os.path.abspath(os.path.join(_HERE, "..", "interop"))):
    if p not in sys.path:
        sys.path.insert(0, p)

from lab import Lab, usable  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "interop: needs a real strongSwan charon")


@pytest.fixture
def lab(request):
    why = usable()
    if why:
        missing(why)
    family = getattr(request, "param", 4)
    topo = Lab(family)
    request.addfinalizer(topo.close)
    return topo
