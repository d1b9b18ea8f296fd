"""The IV on the wire is the sequence number (RFC 4106 §3.1) on both PFE backends, also after
the sequence number is set from outside: the OpenSSL backend generates its IVs inside the
cipher context (EVP_CTRL_GCM_IV_GEN), which must follow every such jump."""
from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from helpers import inner_packet, spec
from inline_ipsec import Burst, Pfe
from inline_ipsec.pfe import PFE_BACKENDS


def esp_fields(wire: bytes) -> tuple[int, int, bytes]:
    """(seq, IV as an integer, ESP packet) of an IPv4 ESP packet without UDP."""
    esp = wire[(wire[0] & 0x0F) * 4:]
    return struct.unpack("!I", esp[4:8])[0], struct.unpack("!Q", esp[8:16])[0], esp


@pytest.mark.parametrize("be", PFE_BACKENDS)
@pytest.mark.parametrize("esn", [False, True])
def test_iv_is_the_sequence_number_across_jumps(be, esn):
    pfe = Pfe(backend=be)
    s = spec(esn=esn)
    h = pfe.add_outbound(s)
    pfe.add_inbound(s)
    key, salt = s.key[:-4], s.key[-4:]
    expected = 0
    for jump in (None, 1000, 5, 2**32 - 4 if not esn else 2**40):
        if jump is not None:
            pfe.set_sequence(h, jump)
            expected = jump
            pfe.set_sequence(pfe.lookup_inbound(s.spi), max(jump - 1, 0))
        burst = Burst.from_packets([inner_packet(size=60 + i) for i in range(3)], h)
        assert pfe.encrypt_burst(burst) == 3
        for wire in burst.packets():
            expected += 1
            seq_lo, iv, esp = esp_fields(wire)
            assert iv == expected and seq_lo == expected & 0xFFFFFFFF
            # an independent AES-GCM opens it with salt || IV and the RFC 4106 §5 AAD
            aad = esp[:4] + struct.pack("!Q", expected) if esn else esp[:8]
            AESGCM(key).decrypt(salt + esp[8:16], esp[16:], aad)
        assert pfe.decrypt_burst(burst) == 3


def test_openssl_iv_follows_a_failed_packet():
    """A packet the kernel refuses before sealing takes no sequence number, and the next
    packet's IV is still its sequence number."""
    pfe = Pfe(backend="openssl")
    s = spec()
    h = pfe.add_outbound(s)
    good = inner_packet(size=80)
    bad = bytearray(good)
    bad[0] = 0x35    # neither IPv4 nor IPv6
    burst = Burst.from_packets([good, bytes(bad), good], h)
    assert pfe.encrypt_burst(burst) == 2
    wires = [burst.packet(i) for i in (0, 2)]
    assert [esp_fields(w)[1] for w in wires] == [1, 2]
