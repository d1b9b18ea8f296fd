"""`inline-ipsec run` with hub-and-spoke configurations: a PSK AutoVPN hub and a spoke, two
processes over loopback UDP; the hub's control socket answers the hub shows."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hub_helpers import hub_config, spoke_config

from inline_ipsec.gateway.control import query
from helpers import free_port_pair, query_until

PSK = 'set security ike policy ike-1 pre-shared-key ascii-text "spokes-secret"'


def _psk(text: str) -> str:
    text = text.replace("ecdsa-signatures-256", "pre-shared-keys")
    return text.replace("set security ike policy ike-1 certificate local-certificate gw-cert",
                        PSK)


def test_run_a_psk_autovpn_hub_and_a_spoke(tmp_path: Path) -> None:
    hub_conf, spoke_conf = tmp_path / "hub.conf", tmp_path / "spoke.conf"
    hub_conf.write_text(_psk(hub_config()))
    spoke_conf.write_text(_psk(spoke_config(1)))
    ph = free_port_pair()
    ps = free_port_pair()
    while ps in (ph, ph + 1) or ps + 1 == ph:
        ps = free_port_pair()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    hub_sock, spoke_sock = tmp_path / "hub.sock", tmp_path / "spoke.sock"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "inline_ipsec", "run", str(hub_conf), "--ike",
         f"127.0.0.1:{ph}", "--duration", "8", "--control", str(hub_sock)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)]
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "inline_ipsec", "run", str(spoke_conf), "--ike",
         f"127.0.0.1:{ps}", "--ike-peer", f"127.0.0.1:{ph}", "--duration", "8",
         "--control", str(spoke_sock)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    try:
        nhtb = query_until(hub_sock, "security ipsec next-hop-tunnels", "10.100.0.11")
        assert "hub@127.0.0.1" not in nhtb and "Auto" in nhtb and "ike-cp" in nhtb
        ike = query(str(hub_sock), "security ike security-associations")
        assert "AutoVPN   hub@127.0.0.1" in ike
        sas = query(str(hub_sock), "security ipsec security-associations")
        assert "Total active tunnels: 1" in sas
        assert "ADVPN statistics" in query(str(spoke_sock), "security advpn statistics")
    finally:
        outs = [p.communicate(timeout=30) for p in procs]
    hub_out = outs[0][0]
    assert "hub and spoke (inline_ipsec.hub): 1 VPNs on udp 127.0.0.1" in hub_out, outs[0]
    assert "0 of 1 VPNs down" in hub_out, hub_out
