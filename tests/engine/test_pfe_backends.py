"""The PFE's crypto backends: byte-identical output, each opens the other's, clear selection."""
from __future__ import annotations

import pytest

from helpers import inner_packet, missing, spec
from inline_ipsec import BackendUnavailableError, Burst, Pfe
from inline_ipsec.pfe import PFE_BACKENDS, resolve_backend

def need_imb() -> None:
    if "ipsec-mb" not in PFE_BACKENDS:
        missing("built without intel-ipsec-mb (libipsec-mb-dev)")


@pytest.mark.parametrize("kw", [dict(), dict(bits=256, esn=True), dict(outer6=True, udp_encap=True),
                                dict(bits=256, outer6=True, df_bit="set")])
def test_openssl_and_ipsec_mb_are_byte_identical(kw):
    need_imb()
    a, b = Pfe(backend="openssl"), Pfe(backend="ipsec-mb")
    s = spec(**kw)
    ha, hb = a.add_outbound(s), b.add_outbound(s)
    a.add_inbound(s)
    b.add_inbound(s)
    inner = [inner_packet(v6=i % 2 == 1, size=40 + 97 * i) for i in range(16)]
    ba, bb = Burst.from_packets(inner, ha), Burst.from_packets(inner, hb)
    assert a.encrypt_burst(ba) == b.encrypt_burst(bb) == 16
    assert ba.packets() == bb.packets()
    # each opens the other's
    assert b.decrypt_burst(ba) == a.decrypt_burst(bb) == 16
    assert ba.packets() == bb.packets() == inner


def test_ipsec_mb_detects_tampering():
    need_imb()
    pfe = Pfe(backend="ipsec-mb")
    s = spec()
    h = pfe.add_outbound(s)
    pfe.add_inbound(s)
    wire = bytearray(pfe.encrypt(h, inner_packet()))
    wire[-1] ^= 0x80
    burst = Burst.from_packets([bytes(wire)])
    assert pfe.decrypt_burst(burst) == 0 and burst.status[0] == 1  # AUTH_FAILED


def test_backend_names():
    assert resolve_backend("openssl") == "openssl"
    assert resolve_backend("auto") in PFE_BACKENDS
    assert PFE_BACKENDS[0] == "openssl"
    with pytest.raises(ValueError, match="unknown PFE backend"):
        Pfe(backend="qat")
    if "ipsec-mb" not in PFE_BACKENDS:
        with pytest.raises(BackendUnavailableError):
            Pfe(backend="ipsec-mb")
    assert Pfe(backend="openssl").backend == "openssl"
    assert "openssl" in repr(Pfe(backend="openssl"))
