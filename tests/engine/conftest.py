"""Every PFE test runs on every crypto backend this build has (openssl, and ipsec-mb when
built): `Pfe()` in a test uses the backend of the current parameter."""
from __future__ import annotations

import pytest

import inline_ipsec.pfe as pfe_module


@pytest.fixture(autouse=True, params=pfe_module.PFE_BACKENDS)
def pfe_backend(request, monkeypatch) -> str:
    monkeypatch.setattr(pfe_module, "DEFAULT_BACKEND", request.param)
    return request.param
