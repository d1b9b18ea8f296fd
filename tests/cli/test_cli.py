"""The `inline-ipsec` command: the demo (main job) and the quick bench."""
from __future__ import annotations

import subprocess
import sys

import pytest

from inline_ipsec.cli import main


def test_demo_runs_and_shows_offload_counters_and_throughput(capsys):
    import time

    from inline_ipsec.gateway.demo_config import DEMO_VPNS
    start = time.monotonic()
    assert main(["demo"]) == 0
    assert time.monotonic() - start < 30
    out = capsys.readouterr().out
    # both verdicts, in the show output itself
    assert "Hardware Offloaded: Yes" in out and "Hardware Offloaded: No" in out
    for v in DEMO_VPNS:                       # every VPN, on the engine Table 1 says
        engine = "PFE     Yes" if v.expect == "Yes" else "CPU     No"
        assert f"{v.name:14} {engine}" in out, v.name
    assert "6656 packets delivered intact" in out
    assert "reassembled at gw-b: identical to the original" in out
    assert "ICMP type 3 code 4" in out and "ICMPv6 type 2" in out
    assert "1 delivered, 2 dropped" in out              # replay and forgery
    assert "dropped (TS check fail)" in out and "MISMATCH" not in out
    assert "Services-offload packets processed" in out and "TS check fail: 1" in out
    assert "PFE  vpn-gcm256" in out and "CPU  vpn-cbc" in out      # pps per path
    assert "11 tunnels, 0 offloaded" in out                          # hw-offload-disable
    assert "enc/raw" in out and "naive" in out                       # the PFE-vs-raw table
    # real IKEv2 between the gateways over loopback UDP (no pre-keyed stand-in for them)
    assert "IKEv2 over loopback UDP: gw-a at 127.0.0.1:" in out
    assert "10 VPNs negotiated" in out and "pre-keyed" not in out
    assert "Version: IKEv2" in out and "Quantum Secured: Yes" in out   # vpn-gcm256: PPK
    two_gateways = out.split("6. IKEv1 (RFC 2409)")[0]
    ike_rows = [line for line in two_gateways.splitlines() if "  IKEv2          " in line]
    assert len(ike_rows) == 10 and all(" UP " in r for r in ike_rows)
    assert "Exchange type: IKEv2, Authentication method: Pre-shared-keys" in out
    # hub and spoke: AutoVPN spokes with NHTB, one ADVPN shortcut up, then idle and gone
    assert "Total next-hop tunnels: 3" in out and "ADVPN deployment not supported by PFE" in out
    assert "Shortcut  to-hub~198.51.100.12" in out
    assert "hub: 20 in from spoke1, 20 out to spoke2 (unchanged)" in out
    assert "shortcut to-hub~198.51.100.12: 180 encrypted" in out
    assert "back through the hub (hub: 30 in from spoke1, 30 out to spoke2)" in out
    assert "gw-a rekeys vpn-cbc:   ChildSaRekeyed -> ChildSaDown" in out
    assert "traffic on the new SA: 8/8 packets delivered" in out
    assert "(INFORMATIONAL Delete)\n" in out and "FAILED" not in out
    assert " root 4500 192.0.2.1" in out                 # vpn-natt: NAT-T, port 4500
    # one IKEv1 pair of gateways (a v1-only IKE gateway): Main Mode, GCM on the PFE
    assert "(Main Mode, PSK, DH group 19, then a Quick Mode per VPN) up in" in out
    assert "  v1-gcm128  on the PFE" in out and "  v1-cbc     on the CPU" in out
    assert [r for r in out.splitlines() if "  Main           198.51.100.1" in r]
    assert "  Version: IKEv1\n" in out
    assert "v1-a rekeys v1-cbc: ChildSaRekeyed -> ChildSaDown" in out
    assert "IKEv1 traffic on the new SA: 8/8 packets delivered" in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_console_script_module_entry():
    r = subprocess.run([sys.executable, "-m", "inline_ipsec", "--version"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("inline-ipsec ")
