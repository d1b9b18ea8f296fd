"""Published vectors through the PFE's public API (tests/data/vectors).

draft-mcgrew-gcm-test-01 §4 and Linux-kernel ESP packets: every AES-GCM packet with a 128- or
256-bit key opens to its plaintext, and tampered copies fail. Tunnel-mode packets go through
`Pfe.decrypt` whole; transport-mode payloads (which the PFE does not forward) open through the
same GCM-ESP layer with `open_esp_gcm` and, through `Pfe.decrypt`, verify their ICV and are then
refused as not tunnel mode."""
from __future__ import annotations

import json

import pytest

from helpers import load_vectors, outer_v4
from _pfe_core import gcm as pfe_gcm
from inline_ipsec import IntegrityError, MalformedPacketError, Pfe, SaSpec, UnknownSpiError
from inline_ipsec.pfe import open_esp_gcm


def load(vectors_dir, name):
    return json.loads((vectors_dir / name).read_text())


MCGREW = [v for v in load_vectors("draft-mcgrew-gcm-test-01.json")["vectors"]
          if v["algorithm"] == "AES-GCM-ESP" and v["key_bits"] in (128, 256)]


def install(v_key: str, v_salt: str, spi: int, esn: bool, seq: int) -> tuple[Pfe, int]:
    key = bytes.fromhex(v_key) + bytes.fromhex(v_salt)
    pfe = Pfe()
    h = pfe.add_inbound(SaSpec(spi=spi, cipher=f"aes-gcm-{len(key) * 8 - 32}", key=key,
                               tunnel_src="192.0.2.1", tunnel_dst="192.0.2.2", esn=esn,
                               replay_window=64))
    if seq > 1:
        pfe.set_sequence(h, seq - 1)  # as if the packet before it had arrived
    return pfe, h


def test_vector_files_hold_what_we_expect():
    assert len(MCGREW) == 15


@pytest.mark.parametrize("v", MCGREW, ids=[v["id"] for v in MCGREW])
def test_mcgrew_opens_with_gcm_esp_layer(v):
    key = bytes.fromhex(v["key"]) + bytes.fromhex(v["salt"])
    seq = int(v["seq"], 16)
    esn_high = (seq >> 32) if v["esn"] else None
    packet = bytes.fromhex(v["packet"])
    assert open_esp_gcm(key, packet, esn_high) == bytes.fromhex(v["plaintext"])
    tampered = bytearray(packet)
    tampered[-1] ^= 1
    with pytest.raises(IntegrityError):
        open_esp_gcm(key, bytes(tampered), esn_high)
    with pytest.raises(IntegrityError):  # the AAD covers the SPI
        open_esp_gcm(key, b"\x00\x00\x00\x01" + packet[4:], esn_high)


@pytest.mark.parametrize("v", MCGREW, ids=[v["id"] for v in MCGREW])
def test_mcgrew_through_pfe_decrypt(v):
    seq = int(v["seq"], 16)
    spi = int(v["spi"], 16)
    if spi < 256:
        # SPI 0 must never be sent (RFC 4303 §2.1): no SA can have it, so the PFE drops it
        # as an unknown SPI before any crypto. The GCM-ESP layer test above opens it.
        pfe = Pfe()
        with pytest.raises(UnknownSpiError):
            pfe.decrypt(outer_v4(bytes.fromhex(v["packet"])))
        assert pfe.engine_counters().unknown_spi == 1
        return
    pfe, h = install(v["key"], v["salt"], spi, v["esn"], seq)
    packet = bytes.fromhex(v["packet"])
    tampered = bytearray(packet)
    tampered[20] ^= 0x80
    with pytest.raises(IntegrityError):
        pfe.decrypt(outer_v4(bytes(tampered)))
    assert pfe.counters(h).auth_failed == 1
    # The genuine packet authenticates (no new auth failure, the window moves to its number)
    # and is then refused: next header 1 is transport mode, which the PFE does not forward.
    with pytest.raises(MalformedPacketError, match="next header"):
        pfe.decrypt(outer_v4(packet))
    c = pfe.counters(h)
    assert (c.auth_failed, c.bad_trailer) == (1, 1)
    assert pfe.sequence(h) == seq


def linux(vectors_dir):
    return load(vectors_dir, "linux-kernel-esp.json")


def test_linux_gcm_tunnel_packets_through_pfe_decrypt(vectors_dir):
    data = linux(vectors_dir)
    gcm = [v for v in data["vectors"] if v["algorithm"].startswith("AES-GCM")]
    assert gcm, "no AES-GCM vectors"
    for v in gcm:
        pfe, h = install(v["key"], v["salt"], int(v["spi"], 16), v["esn"],
                         (v["esn_high"] or 0) << 32 | v["seq"])
        inner = pfe.decrypt(outer_v4(bytes.fromhex(v["esp_packet"])))
        assert inner.hex() == v["derived"]["inner_packet"], v["id"]
        assert v["expected"]["next_header"] == 4 and inner[9] == v["expected"]["inner_ip_protocol"]
        assert pfe.counters(h).packets == 1


def test_linux_negative_vectors_fail_authentication(vectors_dir):
    data = linux(vectors_dir)
    by_id = {v["id"]: v for v in data["vectors"]}
    checked = 0
    for neg in data["negative_vectors"]:
        base = by_id[neg["base"]]
        if not base["algorithm"].startswith("AES-GCM"):
            continue  # GMAC is a CPU-path algorithm
        packet = bytearray.fromhex(base["esp_packet"])
        esn_high = base["esn_high"] if base["esn"] else None
        if neg["mutation"].startswith("seq + 1"):
            seq = int.from_bytes(packet[4:8], "big") + 1
            packet[4:8] = seq.to_bytes(4, "big")
        elif "esn_high = 0" in neg["mutation"]:
            esn_high = 0
        elif "flip the last bit of the ICV" in neg["mutation"]:
            packet[-1] ^= 1
        else:
            pytest.fail(f"unknown mutation {neg['mutation']!r}")
        key = bytes.fromhex(base["key"]) + bytes.fromhex(base["salt"])
        with pytest.raises(IntegrityError):
            open_esp_gcm(key, bytes(packet), esn_high)
        checked += 1
    assert checked == 3


def test_linux_property_no_block_padding(vectors_dir):
    from helpers import inner_packet, spec
    prop = linux(vectors_dir)["properties"][0]
    pfe = Pfe()
    h = pfe.add_outbound(spec())
    inner = inner_packet(size=prop["inner_packet_len"])
    assert len(inner) == prop["inner_packet_len"]
    wire = pfe.encrypt(h, inner)
    assert len(wire) == prop["expected_outer_ipv4_len"]


def test_gcm_spec_known_answers(vectors_dir):
    vs = load(vectors_dir, "gcm-spec.json")["vectors"]
    assert len(vs) >= 8
    for v in vs:
        got = pfe_gcm.seal(bytes.fromhex(v["key"]), bytes.fromhex(v["iv"]),
                           bytes.fromhex(v["aad"]), bytes.fromhex(v["plaintext"]))
        assert got.hex() == v["ciphertext"] + v["tag"], v["id"]
