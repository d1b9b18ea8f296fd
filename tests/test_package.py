"""Packaging promises: no silent fallback when the compiled PFE is missing."""
from __future__ import annotations

import subprocess
import sys


def test_import_without_pfe_core_fails_loudly():
    code = "import sys; sys.modules['_pfe_core'] = None; import inline_ipsec"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "needs its compiled _pfe_core" in r.stderr
    assert "libssl-dev" in r.stderr


def test_version_and_public_names():
    import inline_ipsec
    for name in ("SaSpec", "Pfe", "CpuEngine", "Burst", "IpsecError", "ReplayError",
                 "IntegrityError", "MalformedPacketError", "UnknownSpiError", "CapacityError"):
        assert name in inline_ipsec.__all__ and hasattr(inline_ipsec, name)
    assert issubclass(inline_ipsec.CapacityError, inline_ipsec.IpsecError)
