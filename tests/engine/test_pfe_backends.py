"""The PFE's crypto backends: byte-identical output, each opens the other's, clear selection."""
from __future__ import annotations

import pytest

from helpers import inner_packet, missing, spec
from inline_ipsec import BackendUnavailableError, Burst, Pfe
from inline_ipsec.benchmark import RawReference
from inline_ipsec.pfe import IPSEC_MB_ARCH_ENV, PFE_BACKENDS, ipsec_mb_status, resolve_backend


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


@pytest.mark.parametrize("arch", ["sse", "avx", "avx2", "avx512"])
def test_a_pinned_instruction_set_runs_byte_identical_or_says_why_not(arch, monkeypatch):
    """INLINE_IPSEC_IPSEC_MB_ARCH pins intel-ipsec-mb's code path: every path this CPU has
    gives OpenSSL's bytes; one it lacks is refused with the reason, never run (it would fault)."""
    need_imb()
    monkeypatch.setenv(IPSEC_MB_ARCH_ENV, arch)
    usable, why = ipsec_mb_status()
    if not usable:
        assert "lacks the instructions" in why
        with pytest.raises(BackendUnavailableError, match="lacks the instructions"):
            Pfe(backend="ipsec-mb")
        return
    assert f"({arch}, pinned by {IPSEC_MB_ARCH_ENV})" in why
    a, b = Pfe(backend="openssl"), Pfe(backend="ipsec-mb")
    s = spec(bits=256)
    ha, hb = a.add_outbound(s), b.add_outbound(s)
    b.add_inbound(s)
    inner = [inner_packet(v6=i % 2 == 1, size=40 + 131 * i) for i in range(12)]
    ba, bb = Burst.from_packets(inner, ha), Burst.from_packets(inner, hb)
    assert a.encrypt_burst(ba) == b.encrypt_burst(bb) == 12
    assert ba.packets() == bb.packets()
    assert b.decrypt_burst(ba) == 12 and ba.packets() == inner


def test_an_unknown_instruction_set_is_a_clear_error(monkeypatch):
    need_imb()
    monkeypatch.setenv(IPSEC_MB_ARCH_ENV, "avx1024")
    assert ipsec_mb_status() == (False, f"{IPSEC_MB_ARCH_ENV}='avx1024' is not an instruction "
                                        "set of intel-ipsec-mb: expected one of auto, sse, avx, "
                                        "avx2, avx512")
    with pytest.raises(BackendUnavailableError, match="avx1024"):
        Pfe(backend="ipsec-mb")
    with pytest.raises(RuntimeError, match="avx1024"):
        RawReference(256, 64, 4, backend="ipsec-mb", bursts=1)
    assert Pfe(backend="openssl").backend == "openssl"     # the other backend is unaffected
    monkeypatch.setenv(IPSEC_MB_ARCH_ENV, "auto")
    assert ipsec_mb_status()[0] and "pinned" not in ipsec_mb_status()[1]
