"""The ICL's ESP decrypts in Wireshark (tshark) given its SA: it is ordinary RFC 4106 ESP, and
inside it the RTO messages are UDP datagrams that our codec reads back."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from scapy.all import IP, wrpcap

from inline_ipsec.ha.rto import RTO_PORT, RtoType, decode
from helpers import missing

from ha_helpers import ICL, ICL_KEY, Fabric

GCM16 = "AES-GCM with 16 octet ICV [RFC4106]"


def test_icl_capture_decrypts_in_tshark(tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        missing("tshark (Debian package tshark) is not installed")
    f = Fabric()
    captured: list[bytes] = []
    for _ in range(30):                      # elect, sync, heartbeat, over the ICL only
        f.now += 0.01
        for n in (1, 2):
            icl = f.nodes[n].tick(f.now)
            captured += icl
            f.nodes[3 - n].inbound(icl, f.now)
    assert captured and all(p[9] == 50 for p in captured)     # every ICL packet is ESP
    pcap = tmp_path / "icl.pcap"
    wrpcap(str(pcap), [IP(p) for p in captured])
    conf = tmp_path / "wireshark"
    conf.mkdir()
    key = ICL_KEY                      # manual SA: one SPI (9000) and key in both directions
    rows = [f'"IPv4","{src}","{dst}","0x00002328","{GCM16}","{key}","NULL",""'
            for src, dst in ((ICL[1], ICL[2]), (ICL[2], ICL[1]))]
    (conf / "esp_sa").write_text("\n".join(rows) + "\n")
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-o", "esp.enable_encryption_decode:TRUE",
         "-T", "fields", "-e", "udp.dstport", "-e", "data.data", "-e", "_ws.malformed"],
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=True).stdout
    rows_out = [line.split("\t") for line in out.splitlines() if line.strip()]
    assert len(rows_out) == len(captured)
    kinds = set()
    for fields in rows_out:
        port, data = fields[0], fields[1]
        assert port == str(RTO_PORT), fields          # decrypted: the inner UDP is visible
        assert not (len(fields) > 2 and fields[2]), fields
        kinds.add(decode(bytes.fromhex(data)).type)
    assert {RtoType.HEARTBEAT, RtoType.SA_ADD, RtoType.SYNC_DONE} <= kinds
