"""Wireshark's dissectors (tshark) as an independent reader of what we put on the wire:
every GDOI message (Phase 1, GROUPKEY-PULL decrypted with the Phase 1 key, GROUPKEY-PUSH)
decodes without a malformed-packet or expert warning, the decrypted PULL shows the GDOI SA
with its TEK, the Key Download and the Sequence Number, and the group ESP traffic decrypts
with the TEK (esp_sa table) with a correct ICV and outer addresses equal to the inner ones."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from scapy.utils import wrpcap

from gdoi_helpers import MEMBERS, Net, ipv4_udp
from helpers import missing

pytestmark = pytest.mark.interop


def _tshark(pcap: Path, *opts: str) -> str:
    out = subprocess.run(["tshark", "-r", str(pcap), "-V", "-d", "udp.port==848,isakmp",
                          *opts], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> tuple[Path, Net, dict]:
    if shutil.which("tshark") is None:
        missing("tshark is not installed")
    n = Net(activation_time_delay=5)
    n.register_all()
    n.ks.rekey(1, n.now)
    n.pump()
    n.ks.evict(1, MEMBERS[2], n.now)
    n.pump()
    a = n.members[MEMBERS[0]]
    inner = ipv4_udp("10.0.0.1", "10.0.0.2", b"group traffic")
    kind, esp = a.engine.protect(inner, n.now)
    assert kind == "esp"
    sa = a.engine.sas[int.from_bytes(esp[20:24], "big")]
    frames = [IP(src=s, dst=d) / UDP(sport=848, dport=848) / Raw(dg) for s, d, dg in n.wire]
    frames.append(IP(esp))
    pcap = tmp_path_factory.mktemp("gdoi") / "gdoi.pcap"
    wrpcap(str(pcap), frames)
    keys = {"phase1": [(s.sa.cky_i.hex(), s.sa.keys.enc_key.hex())
                       for s in n.ks.sessions.values() if s.sa.keys is not None],
            "tek": (sa.spi, sa.key.hex(), sa.integrity_key.hex())}
    return pcap, n, keys


def test_no_malformed_or_expert_warnings(capture) -> None:
    pcap, n, keys = capture
    opts = [o for ck, ek in keys["phase1"]
            for o in ("-o", f"uat:ikev1_decryption_table:{ck},{ek}")]
    text = _tshark(pcap, *opts)
    frames = text.count("\nFrame ") + text.startswith("Frame ")
    assert frames == len(n.wire) + 1
    assert "[Malformed" not in text and "Expert Info" not in text
    # the decrypted GROUPKEY-PULL: GDOI SA with a TEK, KD, SEQ
    assert "Domain of interpretation: GDOI (2)" in text
    assert "SA TEK Payload (16)" in text
    assert "Protocol ID: GDOI_PROTO_IPSEC_ESP (1)" in text
    assert "Key Download (17)" in text and "Type: TEK (1)" in text and "Type: KEK (2)" in text
    assert "Sequence Number (18)" in text
    # pushes: exchange 33 under the KEK cookies, encrypted
    assert text.count("Exchange type: New Group Mode (33)") == sum(
        1 for _, _, d in n.wire if d[18] == 33)


def test_group_esp_decrypts_with_the_tek(capture) -> None:
    pcap, _, keys = capture
    spi, ek, ak = keys["tek"]
    text = _tshark(pcap, "-o", "esp.enable_encryption_decode:TRUE",
                   "-o", "esp.enable_authentication_check:TRUE",
                   "-o", f'uat:esp_sa:"IPv4","*","*","{spi:#010x}","AES-CBC [RFC3602]",'
                         f'"0x{ek}","HMAC-SHA-256-128 [RFC4868]","0x{ak}"',
                   "-Y", "esp")
    assert f"ESP SPI: {spi:#010x}" in text
    assert "[correct]" in text and "Next header: IPIP (0x04)" in text
    # outer and inner headers name the same hosts (address preservation)
    assert text.count("Internet Protocol Version 4, Src: 10.0.0.1, Dst: 10.0.0.2") == 2
    assert "group traffic" in text or "67726f7570" in text
