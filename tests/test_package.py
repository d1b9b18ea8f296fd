"""Packaging promises: no silent fallback when the compiled PFE is missing, and a CPU engine
that works without it."""
from __future__ import annotations

import subprocess
import sys


BLOCK = "import sys; sys.modules['_pfe_core'] = None; "


def test_pfe_without_pfe_core_fails_loudly():
    for use in ("from inline_ipsec import Pfe", "import inline_ipsec.pfe",
                "import inline_ipsec; inline_ipsec.Pfe"):
        r = subprocess.run([sys.executable, "-c", BLOCK + use], capture_output=True, text=True)
        assert r.returncode != 0, use
        assert "ImportError" in r.stderr and "needs its compiled _pfe_core" in r.stderr
        assert "libssl-dev" in r.stderr


def test_cpu_engine_runs_without_pfe_core():
    """Only the PFE module imports the extension: the CPU engine loads and carries traffic
    in a process where `_pfe_core` cannot be imported."""
    code = BLOCK + """
import inline_ipsec
from inline_ipsec import Burst, CpuEngine, SaSpec, Status
spec = SaSpec(spi=0x100, cipher="aes-cbc-256", integrity="hmac-sha256-128",
              key=bytes(32), integrity_key=bytes(32), tunnel_src="192.0.2.1",
              tunnel_dst="198.51.100.1")
cpu = CpuEngine()
h = cpu.add_outbound(spec)
cpu.add_inbound(spec)
inner = bytes([0x45, 0, 0, 28] + [0] * 4 + [64, 17, 0, 0, 10, 1, 0, 1, 10, 2, 0, 1]) + bytes(8)
assert cpu.decrypt(cpu.encrypt(h, inner)) == inner
assert "_pfe_core" not in {m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_status_codes_agree_with_the_kernels():
    import _pfe_core
    from inline_ipsec.engine import Status
    assert {s.name: int(s) for s in _pfe_core.Status} == {s.name: int(s) for s in Status}


def test_version_and_public_names():
    import inline_ipsec
    for name in ("SaSpec", "Pfe", "CpuEngine", "Burst", "IpsecError", "ReplayError",
                 "IntegrityError", "MalformedPacketError", "UnknownSpiError", "CapacityError"):
        assert name in inline_ipsec.__all__ and hasattr(inline_ipsec, name)
    assert issubclass(inline_ipsec.CapacityError, inline_ipsec.IpsecError)
