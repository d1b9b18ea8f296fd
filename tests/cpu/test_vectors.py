"""Published vectors (tests/data/vectors) through CpuEngine's public API, including those the
PFE cannot take: 192-bit keys, AES-GMAC (RFC 4543) and transport-mode payloads (next header
1/6/17) of draft-mcgrew-gcm-test-01 §4, and the Linux-kernel packets (AES-GCM and AES-GMAC,
ESN on and off) with their tampered copies."""
from __future__ import annotations

import pytest

from inline_ipsec import ConfigError, IntegrityError, SaSpec
from inline_ipsec.cpu import CpuEngine
from inline_ipsec.cpu.transforms import AesGcm, AesGmac

from .helpers import load_vectors, outer_v4

MCGREW = load_vectors("draft-mcgrew-gcm-test-01.json")["vectors"]
LINUX = load_vectors("linux-kernel-esp.json")


def cipher_of(v) -> str:
    kind = "gmac" if "GMAC" in v["algorithm"] else "gcm"
    return f"aes-{kind}-{v['key_bits']}"


def mcgrew_nh(v) -> int:
    return v["derived"]["next_header"] if "derived" in v else 4


def install(v, spi: int, seq: int, esn: bool, tunnel: bool) -> tuple[CpuEngine, int]:
    key = bytes.fromhex(v["key"]) + bytes.fromhex(v["salt"])
    bits = len(bytes.fromhex(v["key"])) * 8
    kind = "gmac" if "GMAC" in v["algorithm"] else "gcm"
    cpu = CpuEngine()
    h = cpu.add_inbound(SaSpec(spi=spi, cipher=f"aes-{kind}-{bits}", key=key,
                               tunnel_src="192.0.2.1", tunnel_dst="192.0.2.2", esn=esn,
                               mode="tunnel" if tunnel else "transport", replay_window=64))
    if seq > 1:
        cpu.set_sequence(h, seq - 1)      # as if the packet before it had arrived
    return cpu, h


def test_vector_files_hold_what_we_expect():
    assert len(MCGREW) == 17
    assert {cipher_of(v) for v in MCGREW} == {"aes-gcm-128", "aes-gcm-192", "aes-gcm-256",
                                              "aes-gmac-128"}
    assert len(LINUX["vectors"]) == 4 and len(LINUX["negative_vectors"]) == 4


@pytest.mark.parametrize("v", MCGREW, ids=[v["id"] for v in MCGREW])
def test_mcgrew_through_cpu_decrypt(v):
    spi, seq = int(v["spi"], 16), int(v["seq"], 16)
    packet = bytes.fromhex(v["packet"])
    if "GMAC" in v["algorithm"]:
        expected = bytes.fromhex(v["packet"])[16:-16]   # cleartext payload || trailer
        payload, nh = expected[:-2 - expected[-2]], expected[-1]
    else:
        payload, nh = bytes.fromhex(v["derived"]["rest_of_payload_data"]), mcgrew_nh(v)
    if spi < 256:
        # SPI 0 is invalid on the wire (RFC 4303 §2.1): no SaSpec takes it; the GCM-ESP layer
        # of the CPU path opens the packet all the same.
        with pytest.raises(ConfigError):
            SaSpec(spi=spi, cipher=cipher_of(v), key=bytes(20), tunnel_src="192.0.2.1",
                   tunnel_dst="192.0.2.2")
        t = AesGcm(bytes.fromhex(v["key"]) + bytes.fromhex(v["salt"]), v["esn"])
        assert t.open(seq, packet) == bytes.fromhex(v["plaintext"])
        return
    tunnel = nh in (4, 41)
    cpu, h = install(v, spi, seq, v["esn"], tunnel)
    out = cpu.decrypt(outer_v4(packet))
    if tunnel:
        assert out == payload
    else:                                 # transport: our header, protocol = next header
        assert out[9] == nh and out[20:] == payload
        assert int.from_bytes(out[2:4], "big") == 20 + len(payload)
    assert cpu.counters(h).packets == 1
    assert cpu.sequence(h) == seq
    # tampered copies fail and do not move the window
    cpu, h = install(v, spi, seq, v["esn"], tunnel)
    for k in (len(packet) - 1, 8, 20):    # ICV, IV (nonce), payload
        bad = bytearray(packet)
        bad[k] ^= 0x01
        with pytest.raises(IntegrityError):
            cpu.decrypt(outer_v4(bytes(bad)))
    assert cpu.counters(h).auth_failed == 3 and cpu.sequence(h) == max(seq - 1, 0)


def test_gmac_transform_matches_mcgrew_icv():
    v = next(v for v in MCGREW if "GMAC" in v["algorithm"])
    t = AesGmac(bytes.fromhex(v["key"]) + bytes.fromhex(v["salt"]), False)
    packet = bytes.fromhex(v["packet"])
    assert t.aead.encrypt(bytes.fromhex(v["nonce"]), b"", bytes.fromhex(v["aad"])) == \
        bytes.fromhex(v["icv"]) == packet[-16:]


LINUX_BY_ID = {v["id"]: v for v in LINUX["vectors"]}


def linux_engine(v, esn_high=None):
    key = bytes.fromhex(v["keymat"])
    cipher = "aes-gmac-128" if "GMAC" in v["algorithm"] else "aes-gcm-128"
    cpu = CpuEngine()
    h = cpu.add_inbound(SaSpec(spi=int(v["spi"], 16), cipher=cipher, key=key,
                               tunnel_src="192.0.2.1", tunnel_dst="192.0.2.2", esn=v["esn"]))
    hi = v["esn_high"] if esn_high is None else esn_high
    if v["esn"]:
        cpu.set_sequence(h, hi << 32)
    return cpu, h


@pytest.mark.parametrize("v", LINUX["vectors"], ids=[v["id"] for v in LINUX["vectors"]])
def test_linux_kernel_packets(v):
    cpu, h = linux_engine(v)
    inner = cpu.decrypt(outer_v4(bytes.fromhex(v["esp_packet"])))
    assert inner == bytes.fromhex(v["derived"]["inner_packet"])
    assert inner[9] == v["expected"]["inner_ip_protocol"]
    assert cpu.sequence(h) == ((v["esn_high"] or 0) << 32) + v["seq"]


@pytest.mark.parametrize("n", LINUX["negative_vectors"],
                         ids=[n["id"] for n in LINUX["negative_vectors"]])
def test_linux_kernel_negative(n):
    v = LINUX_BY_ID[n["base"]]
    packet = bytearray(bytes.fromhex(v["esp_packet"]))
    esn_high = None
    if n["id"] == "scapy-neg-1":          # seq + 1
        packet[7] += 1
    elif n["id"] == "scapy-neg-2":        # ESN high half 0 instead of 1
        esn_high = 0
    elif n["id"] == "scapy-neg-3":        # last ICV bit
        packet[-1] ^= 1
    else:                                 # a bit of the GMAC-protected cleartext payload
        packet[30] ^= 1
    cpu, h = linux_engine(v, esn_high)
    with pytest.raises(IntegrityError):
        cpu.decrypt(outer_v4(bytes(packet)))
    assert cpu.counters(h).auth_failed == 1 and cpu.counters(h).packets == 0


GCM_SPEC = load_vectors("gcm-spec.json")["vectors"]


@pytest.mark.parametrize("v", GCM_SPEC, ids=[v["id"] for v in GCM_SPEC])
def test_gcm_spec_known_answers_on_the_cpu_cipher(v):
    """The primitive AES-GCM known answers (what RFC 4106 refers to), through the CPU path's
    transform keyed the RFC 4106 way: key || salt, nonce = salt || 8-byte IV."""
    key, iv = bytes.fromhex(v["key"]), bytes.fromhex(v["iv"])
    t = AesGcm(key + iv[:4], esn=False)
    assert t.salt + iv[4:] == iv
    out = t.aead.encrypt(t.salt + iv[4:], bytes.fromhex(v["plaintext"]),
                         bytes.fromhex(v["aad"]) or None)
    assert out == bytes.fromhex(v["ciphertext"]) + bytes.fromhex(v["tag"])
