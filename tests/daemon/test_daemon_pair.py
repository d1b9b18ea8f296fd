"""Two `inline-ipsec run --tun` daemons against each other, through the command line only.

    hl 10.1.0.10 -- ga: inline-ipsec run (st0) ==ESP== gb: inline-ipsec run (st0) -- hr 10.2.0.10

Plain ESP on raw sockets between the two (no NAT), ESP in UDP when one side claims a NAT. Each
scenario pings and streams UDP both ways; the capture and key table one daemon writes
(`--pcap`, `--esp-keys`) are decrypted by tshark with nothing else; then the operational
commands: abbreviations, a rekey we request, a commit changing the DF bit of an offloaded tunnel
(waits for that rekey), clear, a commit adding a VPN, and SIGTERM (the peer logs the Delete).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

import pytest
from helpers import missing
from lab import LEFT, RIGHT, DaemonProc, df_bits, junos_psk, settled, wait_for
from udp_probe import udp_both_ways

pytestmark = pytest.mark.interop


def _pair(lab, tmp_path, a_conf: str, b_conf: str, a_extra=(), b_extra=(), capture=True):
    a = DaemonProc(lab, "ga", tmp_path, a_conf, *a_extra, name="a", capture=capture)
    try:
        b = DaemonProc(lab, "gb", tmp_path, b_conf, *b_extra, name="b", capture=capture)
    except BaseException:
        a.stop()
        raise
    return a, b


def _up(*daemons) -> bool:
    return wait_for(lambda: all("<" in d.cli("show sec ipsec sa", check=False)
                                for d in daemons), 20) and all(settled(d) for d in daemons)


def _traffic(lab, inner: int = 4) -> None:
    left, right = LEFT[inner][1], RIGHT[inner][1]
    for src, dst in (("hl", right), ("hr", left)):
        r = lab.ping(src, dst, count=3, family=inner)
        assert " 0% packet loss" in r.stdout, r.stdout + r.stderr
    udp_both_ways(lab, left, right, count=20)


def _tshark_decrypts(d: DaemonProc, tmp_path) -> str:
    """tshark, given only the capture and the key table, decrypts the ESP packets."""
    tshark = shutil.which("tshark")
    if tshark is None:
        missing("tshark is not installed")
    home = tmp_path / "wireshark-home"
    (home / ".config" / "wireshark").mkdir(parents=True, exist_ok=True)
    shutil.copy(d.keys, home / ".config" / "wireshark" / "esp_sa")
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    res = subprocess.run([tshark, "-n", "-r", str(d.pcap), "-o",
                          "esp.enable_encryption_decode:TRUE", "-Y", "esp && (icmp || udp)",
                          "-T", "fields", "-e", "esp.spi", "-e", "ip.src", "-e", "ip.dst",
                          "-e", "icmp.type", "-e", "udp.dstport", "-E", "occurrence=l"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.parametrize("cipher,integrity,offloaded", [
    ("aes-128-gcm", None, "Yes"),
    ("aes-256-cbc", "hmac-sha-256-128", "No"),
])
def test_two_daemons_ping_udp_and_tshark(lab, tmp_path, cipher, integrity, offloaded):
    a, b = _pair(lab, tmp_path, junos_psk(4, "a", cipher=cipher, integrity=integrity),
                 junos_psk(4, "b", cipher=cipher, integrity=integrity))
    try:
        assert _up(a, b), a.output() + b.output()
        assert f"Hardware Offloaded: {offloaded}" in a.cli("show sec ipsec sa detail")
        _traffic(lab)
    finally:
        a.stop()
        b.stop()
    lines = [x.split("\t") for x in _tshark_decrypts(a, tmp_path).splitlines()]
    # ESP records with the inner ICMP echo requests (8) and replies (0) and the UDP stream
    # decrypted: both directions, each on its own SPI
    icmp = {(x[1], x[3]) for x in lines if x[3]}
    assert ("10.1.0.10", "8") in icmp and ("10.2.0.10", "0") in icmp, lines[:10]
    assert len({x[0] for x in lines}) >= 2      # (a duplicate pair may have carried a few)
    assert sum(1 for x in lines if x[4] == "40001") >= 40


def _burst_counts(d: DaemonProc) -> dict:
    """The burst-slot data path's counters from `show daemon statistics`."""
    stats = d.cli("show daemon statistics")
    line = next((x for x in stats.splitlines() if "Burst slots (TUN and raw ESP in C)" in x),
                None)
    assert line is not None, stats
    return {k.strip().rsplit(" ", 1)[0]: int(k.strip().rsplit(" ", 1)[1])
            for k in line.split(":", 1)[1].split(",")}


@pytest.mark.parametrize("lab,inner,cipher,integrity", [
    (4, 4, "aes-128-gcm", None),                    # offloaded: every packet in the slots
    (4, 4, "aes-256-cbc", "hmac-sha-256-128"),      # CPU path: punted, out by bytes
    (4, 6, "aes-128-gcm", None),
    (6, 4, "aes-128-gcm", None),                    # IPv6 outer: the header rebuilt in C
], indirect=["lab"])
def test_burst_slot_io_between_daemons(lab, tmp_path, inner, cipher, integrity):
    """Without a capture the daemons read the TUN and the raw ESP sockets into the bursts'
    slots and write from them in C; traffic flows both ways, and the counters say it went
    that way (punted CPU-path packets left by the list path)."""
    conf = dict(cipher=cipher, integrity=integrity, inner=inner)
    outer = lab.outer
    a, b = _pair(lab, tmp_path, junos_psk(outer, "a", **conf), junos_psk(outer, "b", **conf),
                 capture=False)
    try:
        assert _up(a, b), a.output() + b.output()
        assert "data path I/O: TUN and raw ESP read into and written from" in a.output()
        _traffic(lab, inner=inner)
        for d in (a, b):
            c = _burst_counts(d)
            assert c["tun read"] >= 23 and c["esp in"] >= 23, c
            assert c["send errors"] == 0 and c["truncated"] == 0, c
            if integrity is None:
                assert c["esp out"] >= 23 and c["tun written"] >= 23, c
            else:                                   # the CPU engine's packets: bytes
                assert c["esp out"] == 0 and c["tun written"] == 0, c
    finally:
        a.stop()
        b.stop()


def test_burst_slot_daemon_against_a_capturing_one(lab, tmp_path):
    """One daemon on the burst-slot path, its peer on the bytes path (capturing): the
    capture shows the first one's ESP, which tshark decrypts."""
    a = DaemonProc(lab, "ga", tmp_path, junos_psk(4, "a"), name="a")
    try:
        b = DaemonProc(lab, "gb", tmp_path, junos_psk(4, "b"), name="b", capture=False)
    except BaseException:
        a.stop()
        raise
    try:
        assert _up(a, b), a.output() + b.output()
        assert "burst slots off (a capture takes every packet as bytes)" in a.output()
        _traffic(lab)
        assert _burst_counts(b)["esp out"] >= 23
    finally:
        a.stop()
        b.stop()
    lines = [x.split("\t") for x in _tshark_decrypts(a, tmp_path).splitlines()]
    assert ("10.2.0.10", "0") in {(x[1], x[3]) for x in lines if x[3]}, lines[:10]


@pytest.mark.parametrize("lab", [6], indirect=True)
def test_two_daemons_ipv6_outer_ipv6_inner(lab, tmp_path):
    a, b = _pair(lab, tmp_path, junos_psk(6, "a", inner=6), junos_psk(6, "b", inner=6))
    try:
        assert _up(a, b), a.output() + b.output()
        _traffic(lab, inner=6)
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("how", [("--nat-t", "vpn-1"), ("--no-raw-esp",)])
def test_nat_t_between_daemons(lab, tmp_path, how):
    a, b = _pair(lab, tmp_path, junos_psk(4, "a"), junos_psk(4, "b"), a_extra=how)
    try:
        if how == ("--no-raw-esp",):
            assert "every IKE SA claims a NAT" in a.stdout.read_text()
        assert _up(a, b), a.output() + b.output()
        assert " 4500 " in a.cli("show sec ipsec sa"), a.cli("show sec ipsec sa")
        _traffic(lab)
    finally:
        a.stop()
        b.stop()
    lines = [x.split("\t") for x in _tshark_decrypts(a, tmp_path).splitlines()]
    assert sum(1 for x in lines if x[4] == "40001") >= 40, lines[:10]


def test_nat_t_on_the_burst_slot_path(lab, tmp_path):
    """Without a capture, what arrives on UDP 4500 is received into the bursts' slots in C
    with its IP and UDP header rebuilt: ESP in UDP is decrypted there, and IKE behind the
    non-ESP marker (IKE_AUTH and everything after the NAT was detected) reaches IKE."""
    a, b = _pair(lab, tmp_path, junos_psk(4, "a"), junos_psk(4, "b"),
                 a_extra=("--nat-t", "vpn-1"), capture=False)
    try:
        assert _up(a, b), a.output() + b.output()
        assert " 4500 " in a.cli("show sec ipsec sa"), a.cli("show sec ipsec sa")
        _traffic(lab)
        for d in (a, b):
            c = _burst_counts(d)
            assert c["natt in"] >= 23 and c["tun written"] >= 23 and c["esp in"] == 0, c
            assert c["esp out"] >= 23 and c["truncated"] == 0, c
    finally:
        a.stop()
        b.stop()


def test_operations_rekey_commit_clear_and_stop(lab, tmp_path):
    a, b = _pair(lab, tmp_path, junos_psk(4, "a"), junos_psk(4, "b"))
    try:
        assert _up(a, b), a.output() + b.output()
        time.sleep(3)        # both ends initiate; the duplicate pair goes within the backoff
        # Junos abbreviations
        full = a.cli("show security ipsec security-associations")
        assert a.cli("show sec ipsec sa").splitlines()[:2] == full.splitlines()[:2]
        assert "Total active tunnels: 1" in full
        assert "ambiguous" in a.cli("show sec i sa", check=False)
        assert " 0% packet loss" in lab.ping("hl", "10.2.0.10", count=2).stdout
        # a DF-bit change on the offloaded tunnel waits for the next rekey ...
        a.conf.write_text(junos_psk(4, "a", df_bit="set"))
        out = a.cli("commit")
        assert "DF-bit clear -> set, applies at its next rekey (offloaded)" in out, out
        assert "DF-bit: clear" in a.cli("show sec ipsec sa detail")
        assert " 0% packet loss" in lab.ping("hl", "10.2.0.10", count=2).stdout
        assert df_bits(a) == {"before": False, "after": False}
        old = re.findall(r"<\d+\s+\S+\s+(0x[0-9a-f]{8})", a.cli("show sec ipsec sa"))
        # the peer rekeys (CREATE_CHILD_SA from b): a's new SAs carry the DF bit
        assert "rekey started for 1" in b.cli("request security ipsec rekey vpn-name vpn-1")
        assert wait_for(lambda: old[0] not in a.cli("show sec ipsec sa") and
                        "<" in a.cli("show sec ipsec sa"), 15), a.output()
        assert "DF-bit: set" in a.cli("show sec ipsec sa detail")
        _traffic(lab)
        assert df_bits(a) == {"before": False, "after": True}
        # clear the IPsec SAs: they come back (establish-tunnels immediately)
        assert "cleared" in a.cli("clear security ipsec security-associations vpn-name vpn-1")
        assert wait_for(lambda: "<" in a.cli("show sec ipsec sa") and
                        "<" in b.cli("show sec ipsec sa"), 20), a.output()
        # clear the IKE SA (a Delete to the peer)
        # (the duplicate IKE SA of the crossing start may still be closing: 1 or 2)
        assert re.match(r"[12] IKE SAs? cleared", a.cli("clear sec ike sa 192.0.2.2"))
        assert wait_for(lambda: "<" in a.cli("show sec ipsec sa"), 20), a.output()
        _traffic(lab)
        assert "KMD_VPN_DOWN_ALARM_USER" in b.log.read_text()
    finally:
        assert a.stop(signal.SIGTERM) == 0
    # the peer saw our Delete on SIGTERM
    assert wait_for(lambda: "IKE SA down (deleted by peer)" in b.log.read_text(), 10), \
        b.output()
    b.stop()
    log = a.log.read_text()
    assert "KMD_PM_SA_REKEYED" in log and "commit complete" in log


def _second_vpn(side: str) -> str:
    """vpn-2 on the same IKE gateway: 10.1.0.0/24 <-> 10.2.1.0/24 over st0.1."""
    mine, theirs = ("10.1.0.0/24", "10.2.1.0/24") if side == "a" else \
        ("10.2.1.0/24", "10.1.0.0/24")
    pre = "set security ipsec vpn vpn-2"
    return "\n".join([
        "set interfaces st0 unit 1 family inet", f"{pre} bind-interface st0.1",
        f"{pre} ike gateway peer", f"{pre} ike ipsec-policy e1",
        f"{pre} establish-tunnels immediately",
        f"{pre} traffic-selector ts local-ip {mine} remote-ip {theirs}",
        f"set routing-options static route {theirs} next-hop st0.1"]) + "\n"


def test_commit_adds_and_removes_a_vpn(lab, tmp_path):
    # a second network behind gb: 10.2.1.10 on hr, 10.2.1.1 on gb
    lab.run("hr", "ip", "addr", "add", "10.2.1.10/24", "dev", lab.if_r_hr)
    lab.run("gb", "ip", "addr", "add", "10.2.1.1/24", "dev", lab.if_r_gb)
    a, b = _pair(lab, tmp_path, junos_psk(4, "a"), junos_psk(4, "b") + _second_vpn("b"))
    try:
        assert _up(a, b), a.output() + b.output()
        assert lab.ping("hl", "10.2.1.10", count=2).returncode != 0   # no tunnel yet
        a.conf.write_text(junos_psk(4, "a") + _second_vpn("a"))
        out = a.cli("commit")
        assert "VPNs added: vpn-2" in out, out
        assert wait_for(lambda: "Total active tunnels: 2" in a.cli("show sec ipsec sa"), 25), \
            a.output()
        for dst in ("10.2.0.10", "10.2.1.10"):
            r = lab.ping("hl", dst, count=3)
            assert " 0% packet loss" in r.stdout, r.stdout + a.output()
        # SIGHUP re-reads the configuration too: vpn-2 goes again
        a.conf.write_text(junos_psk(4, "a"))
        a.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "removed: vpn-2" in a.log.read_text(), 10), a.output()
        assert wait_for(lambda: "Total active tunnels: 1" in a.cli("show sec ipsec sa"), 25), \
            a.output()
        assert " 0% packet loss" in lab.ping("hl", "10.2.0.10", count=3).stdout
        assert "vpn-2" not in a.cli("show sec ipsec sa detail")
        # a configuration with an error changes nothing
        a.conf.write_text("set security ipsec vpn broken bogus-statement\n")
        assert "error" in a.cli("commit")
        assert "Total active tunnels: 1" in a.cli("show sec ipsec sa")
    finally:
        a.stop()
        b.stop()


def test_two_daemons_ecdsa_certificates(lab, tmp_path):
    from pki import ecdsa_pki
    peer_dir = tmp_path / "b-pki"
    peer_dir.mkdir()
    files = ecdsa_pki(tmp_path, peer_dir=peer_dir)

    def cert_conf(side: str) -> str:
        text = junos_psk(4, side).replace(
            "authentication-method pre-shared-keys", "authentication-method ecdsa-signatures-256")
        return "\n".join(x for x in text.splitlines() if "pre-shared-key" not in x) + \
            f"\nset security ike policy pol1 certificate local-certificate {side}-cert\n"
    a, b = _pair(lab, tmp_path, cert_conf("a"), cert_conf("b"), a_extra=files["a"],
                 b_extra=files["b"])
    try:
        assert _up(a, b), a.output() + b.output()
        _traffic(lab)
    finally:
        a.stop()
        b.stop()


JUNK = r"""
import os, random, socket, sys
random.seed(7)
dst = sys.argv[1]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
for i in range(3000):
    n = random.choice([0, 1, 3, 4, 8, 12, 28, 60, 200, 1400])
    data = bytes(random.getrandbits(8) for _ in range(n))
    kind = i % 4
    if kind == 0:
        u.sendto(data, (dst, 500))
    elif kind == 1:
        u.sendto(data, (dst, 4500))
    elif kind == 2:
        u.sendto(b"\x00\x00\x00\x00" + data, (dst, 4500))
    else:
        r.sendto(data, (dst, 0))
print("sent")
"""


def test_garbage_from_the_network_is_counted_not_fatal(lab, tmp_path):
    """Random datagrams on UDP 500 and 4500 (with and without the non-ESP marker) and random
    raw ESP from the peer's address: counted drops; the daemon stays up, the tunnel works."""
    import sys
    a, b = _pair(lab, tmp_path, junos_psk(4, "a"), junos_psk(4, "b"))
    try:
        assert _up(a, b), a.output() + b.output()
        res = lab.run("gb", sys.executable, "-c", JUNK, lab.a_out)
        assert "sent" in res.stdout
        assert a.proc.poll() is None, a.output()
        stats = a.cli("show daemon statistics")
        assert "Internal errors (bursts dropped): 0" in stats, stats + a.output()
        ipsec = a.cli("show security ipsec statistics")
        assert int(re.search(r"Invalid SPI: (\d+)", ipsec).group(1)) > 0, ipsec
        _traffic(lab)
    finally:
        a.stop()
        b.stop()


def test_commit_df_bit_on_a_cpu_tunnel_applies_at_once(lab, tmp_path):
    cbc = dict(cipher="aes-256-cbc", integrity="hmac-sha-256-128")
    a, b = _pair(lab, tmp_path, junos_psk(4, "a", **cbc), junos_psk(4, "b", **cbc))
    try:
        assert _up(a, b), a.output() + b.output()
        assert "Hardware Offloaded: No" in a.cli("show sec ipsec sa detail")
        assert " 0% packet loss" in lab.ping("hl", "10.2.0.10", count=2).stdout
        a.conf.write_text(junos_psk(4, "a", df_bit="set", **cbc))
        out = a.cli("commit")
        assert "DF-bit clear -> set, applies now (CPU)" in out, out
        assert "DF-bit: set" in a.cli("show sec ipsec sa detail")
        assert " 0% packet loss" in lab.ping("hl", "10.2.0.10", count=2).stdout
        assert df_bits(a) == {"before": False, "after": True}
    finally:
        a.stop()
        b.stop()


def test_commit_keeps_the_unchanged_ike_gateway_up(lab, tmp_path):
    """A commit that adds (then removes) another IKE gateway and its VPN leaves the existing
    gateway's IKE SA and tunnel as they are: same IKE SPIs, same IPsec SPIs, no Delete at
    the peer, traffic throughout."""
    other = "\n".join([
        "set security ike gateway other ike-policy pol1",
        "set security ike gateway other address 192.0.2.99",
        "set security ike gateway other external-interface ge-0/0/0.0",
        "set security ike gateway other version v2-only",
        "set interfaces st0 unit 5 family inet",
        "set security ipsec vpn vpn-9 bind-interface st0.5",
        "set security ipsec vpn vpn-9 ike gateway other",
        "set security ipsec vpn vpn-9 ike ipsec-policy e1",
        "set security ipsec vpn vpn-9 traffic-selector ts local-ip 10.1.0.0/24 "
        "remote-ip 10.9.0.0/24"]) + "\n"
    a, b = _pair(lab, tmp_path, junos_psk(4, "a"), junos_psk(4, "b"))
    try:
        assert _up(a, b), a.output() + b.output()
        time.sleep(3)

        def cookies() -> set:
            return set(re.findall(r"UP\s+([0-9a-f]{16}\s+[0-9a-f]{16})",
                                  a.cli("show sec ike sa")))
        ike_before = cookies()

        def spis() -> list:
            return re.findall(r"[<>]\d+\s+\S+\s+(0x[0-9a-f]{8})", a.cli("show sec ipsec sa"))
        sa_before = spis()
        assert len(sa_before) == 2
        a.conf.write_text(junos_psk(4, "a") + other)
        out = a.cli("commit")
        assert "VPNs added: vpn-9" in out and "kept with their IKE SAs: peer" in out, out
        assert "negotiated afresh: other" in out, out
        assert spis() == sa_before
        assert cookies() and cookies() <= ike_before, (cookies(), ike_before)
        _traffic(lab)
        a.conf.write_text(junos_psk(4, "a"))
        out = a.cli("commit")
        assert "removed: vpn-9" in out and "kept with their IKE SAs: peer" in out, out
        assert spis() == sa_before
        _traffic(lab)
        # the carried IKE SA still works: a rekey over it succeeds
        assert "rekey started for 1" in a.cli("request security ipsec rekey")
        assert wait_for(lambda: len(spis()) == 2 and not set(spis()) & set(sa_before), 15), \
            a.output()
        _traffic(lab)
        assert "deleted by peer" not in b.log.read_text()
    finally:
        a.stop()
        b.stop()


def _manual(side: str) -> str:
    me, peer = ("192.0.2.1", "192.0.2.2") if side == "a" else ("192.0.2.2", "192.0.2.1")
    theirs = "10.2.0.0/24" if side == "a" else "10.1.0.0/24"
    pre = "set security ipsec vpn man manual"
    return "\n".join([
        f"set interfaces ge-0/0/0 unit 0 family inet address {me}/24",
        "set interfaces st0 unit 0 family inet",
        "set security ipsec vpn man bind-interface st0.0",
        f"{pre} spi 4660", f"{pre} protocol esp",
        f"{pre} encryption algorithm aes-128-gcm key hexadecimal "
        "0x00112233445566778899aabbccddeeff01020304",
        f"{pre} gateway {peer}", f"{pre} external-interface ge-0/0/0.0",
        f"set routing-options static route {theirs} next-hop st0.0",
        "set system license ipsec-offload expires 2099-12-31"]) + "\n"


def test_manual_sas_between_daemons(lab, tmp_path):
    """No IKE at all: the configuration's manual SA (one SPI and key both ways, as Junos
    uses them) carries the traffic from the first packet; commit and stop work without IKE."""
    a, b = _pair(lab, tmp_path, _manual("a"), _manual("b"))
    try:
        assert "0x00001234" in a.cli("show sec ipsec sa")
        _traffic(lab)
        assert "no change to the tunnels" in a.cli("commit")
        assert "0 IKE SAs cleared" in a.cli("clear sec ike sa")
    finally:
        assert a.stop() == 0
        b.stop()
