"""`inline-ipsec run` negotiates IKEv2 with a real peer over loopback UDP: a second `run`
process (--ike / --ike-peer), or the in-process peer (--peer)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from inline_ipsec.gateway.control import query
from inline_ipsec.gateway.demo_config import demo_config
from inline_ipsec.gateway.runner import parse_transport
from helpers import free_port_pair, query_until


def test_parse_transport() -> None:
    assert parse_transport("127.0.0.1:5000") == ("127.0.0.1", 5000, 5001)
    assert parse_transport("[::1]:5000:6000") == ("::1", 5000, 6000)
    assert parse_transport("127.0.0.1:0") == ("127.0.0.1", 0, 0)


def test_two_run_processes_negotiate_over_udp(tmp_path: Path) -> None:
    conf_a, conf_b = tmp_path / "a.conf", tmp_path / "b.conf"
    conf_a.write_text(demo_config("a"))
    conf_b.write_text(demo_config("b"))
    pa, pb = free_port_pair(), free_port_pair()
    while pb in (pa, pa + 1) or pb + 1 == pa:
        pb = free_port_pair()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = []
    socks = []
    for conf, mine, theirs, name in ((conf_a, pa, pb, "a"), (conf_b, pb, pa, "b")):
        sock = tmp_path / f"{name}.sock"
        socks.append(sock)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "inline_ipsec", "run", str(conf), "--ike",
             f"127.0.0.1:{mine}", "--ike-peer", f"127.0.0.1:{theirs}", "--duration", "8",
             "--control", str(sock)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    try:
        summary = query_until(socks[1], "security ipsec security-associations",
                               "Total IPsec sas: 12")        # vpn-multi: 2 child SAs
        assert "Total active tunnels: 11" in summary
        ike = query(str(socks[1]), "security ike security-associations")
        rows = [r for r in ike.splitlines() if "IKEv2" in r]
        assert len(rows) == 10 and all(" UP " in r and ("192.0.2.1" in r or "2001:db8::1" in r)
                                      for r in rows)
        detail = query(str(socks[0]), "security ipsec security-associations detail "
                                      "vpn-name vpn-gcm256")
        assert "Quantum Secured: Yes" in detail and "Hardware Offloaded: Yes" in detail
        out, err = procs[0].communicate(timeout=30)
        assert "IKE: all 10 IKE VPNs up" in out, (out, err)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()


def test_run_with_in_process_peer_runs_ike(tmp_path: Path) -> None:
    conf_a, conf_b = tmp_path / "a.conf", tmp_path / "b.conf"
    conf_a.write_text(demo_config("a"))
    conf_b.write_text(demo_config("b"))
    sock = tmp_path / "gw.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "inline_ipsec", "run", str(conf_a), "--peer", str(conf_b),
         "--nat-t", "vpn-natt", "--duration", "4", "--control", str(sock)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        query_until(sock, "security ipsec security-associations", "Total active tunnels: 11")
        detail = query_until(sock, "security ike security-associations detail",
                              "Role: Initiator")
        assert "Exchange type: IKEv2" in detail
        natt = query(str(sock), "security ipsec security-associations detail vpn-name vpn-natt")
        assert "Packet Encapsulation: UDP" in natt and "Version: IKEv2" in natt
        out, err = proc.communicate(timeout=30)
        assert "IKEv2 on udp 127.0.0.1:" in out and "decrypted" in out, err
        assert int(out.split("packets encrypted")[0].split(";")[-1]) > 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
