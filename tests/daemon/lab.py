"""Network namespaces for the daemon tests: two hosts behind two gateways.

    hl (host left)        ga (gateway A)                    gb (gateway B)         hr (host right)
    10.1.0.10/24 --veth-- 10.1.0.1/24 | OUTER_A --veth-- OUTER_B | 10.2.0.1/24 --veth-- 10.2.0.10/24
    (v6: fd00:1::10/64)   fd00:1::1/64                       fd00:2::1/64          fd00:2::10/64

The outer link is IPv4 (192.0.2.1/24 <-> 192.0.2.2/24) or IPv6 (2001:db8:f::1/64 <-> ::2).
Each gateway namespace forwards; the gateways run `inline-ipsec run --tun` or charon
(kernel-libipsec). Every namespace and veth is removed on `close()` (deleting a namespace
deletes its veths); names carry the test process's pid so parallel runs do not collide.
"""
from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

IP = shutil.which("ip") or "/usr/sbin/ip"
OUTER = {4: ("192.0.2.1", "192.0.2.2", 24), 6: ("2001:db8:f::1", "2001:db8:f::2", 64)}
LEFT = {4: ("10.1.0.1", "10.1.0.10", "10.1.0.0/24", 24),
        6: ("fd00:1::1", "fd00:1::10", "fd00:1::/64", 64)}
RIGHT = {4: ("10.2.0.1", "10.2.0.10", "10.2.0.0/24", 24),
         6: ("fd00:2::1", "fd00:2::10", "fd00:2::/64", 64)}
_seq = itertools.count()


def usable() -> Optional[str]:
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN, raw sockets)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    return None


def sh(*args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                         check=False)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {res.stdout}{res.stderr}")
    return res


class Lab:
    def __init__(self, outer: int = 4) -> None:
        n = f"{os.getpid() % 10000}x{next(_seq)}"
        self.outer = outer
        self.ns = {k: f"iid{k}{n}" for k in ("hl", "ga", "gb", "hr")}
        self.a_out, self.b_out, plen = OUTER[outer]
        self.created: list[str] = []
        try:
            for name in self.ns.values():
                sh(IP, "netns", "add", name)
                self.created.append(name)
                sh(IP, "-n", name, "link", "set", "lo", "up")
            self._link("hl", "ga", "l")
            self._link("ga", "gb", "w")
            self._link("gb", "hr", "r")
            for g in ("ga", "gb"):
                self.run(g, "sysctl", "-qw", "net.ipv4.ip_forward=1")
                self.run(g, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
            self._addr("ga", "w", f"{self.a_out}/{plen}")
            self._addr("gb", "w", f"{self.b_out}/{plen}")
            for fam in (4, 6):
                gw_l, host_l, _net_l, pl = LEFT[fam]
                gw_r, host_r, _net_r, pr = RIGHT[fam]
                self._addr("hl", "l", f"{host_l}/{pl}")
                self._addr("ga", "l", f"{gw_l}/{pl}")
                self._addr("gb", "r", f"{gw_r}/{pr}")
                self._addr("hr", "r", f"{host_r}/{pr}")
                f = f"-{fam}"
                sh(IP, "-n", self.ns["hl"], f, "route", "add", "default", "via", gw_l)
                sh(IP, "-n", self.ns["hr"], f, "route", "add", "default", "via", gw_r)
        except BaseException:
            self.close()
            raise

    def _link(self, a: str, b: str, tag: str) -> None:
        ia, ib = f"{tag}{a}", f"{tag}{b}"
        sh(IP, "link", "add", ia, "netns", self.ns[a], "type", "veth", "peer", "name", ib,
           "netns", self.ns[b])
        sh(IP, "-n", self.ns[a], "link", "set", ia, "up")
        sh(IP, "-n", self.ns[b], "link", "set", ib, "up")
        setattr(self, f"if_{tag}_{a}", ia)
        setattr(self, f"if_{tag}_{b}", ib)

    def _addr(self, ns: str, tag: str, prefix: str) -> None:
        dev = getattr(self, f"if_{tag}_{ns}")
        extra = ("nodad",) if ":" in prefix else ()
        sh(IP, "-n", self.ns[ns], "addr", "add", prefix, "dev", dev, *extra)

    def run(self, ns: str, *args: str, check: bool = True, timeout: float = 30
            ) -> subprocess.CompletedProcess:
        return sh(IP, "netns", "exec", self.ns[ns], *args, check=check, timeout=timeout)

    def popen(self, ns: str, args: list, **kw) -> subprocess.Popen:
        return subprocess.Popen([IP, "netns", "exec", self.ns[ns], *args], **kw)

    def ping(self, src: str, dst: str, count: int = 3, family: int = 4, size: int = 56
             ) -> subprocess.CompletedProcess:
        return self.run(src, "ping", f"-{family}", "-c", str(count), "-i", "0.2", "-W", "2",
                        "-s", str(size), dst, check=False)

    def close(self) -> None:
        for name in self.created:
            sh(IP, "netns", "pids", name, check=False)
            pids = sh(IP, "netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            sh(IP, "netns", "del", name, check=False)
        self.created = []


def junos_psk(outer: int, side: str, *, cipher: str = "aes-128-gcm",
              integrity: Optional[str] = None, df_bit: Optional[str] = None,
              psk: str = "daemon-test-psk-0123456789", inner: int = 4,
              establish: str = "immediately", lifetime: Optional[int] = None) -> str:
    """A route-based IKEv2 PSK VPN from gateway `side` ("a" or "b") to the other."""
    me, peer, plen = (OUTER[outer][0], OUTER[outer][1], OUTER[outer][2]) if side == "a" \
        else (OUTER[outer][1], OUTER[outer][0], OUTER[outer][2])
    mine = (LEFT if side == "a" else RIGHT)[inner][2]
    theirs = (RIGHT if side == "a" else LEFT)[inner][2]
    fam = "inet" if outer == 4 else "inet6"
    rib = "" if inner == 4 else "rib inet6.0 "
    lines = [
        f"set interfaces ge-0/0/0 unit 0 family {fam} address {me}/{plen}",
        f"set interfaces st0 unit 0 family {'inet' if inner == 4 else 'inet6'}",
        "set security ike proposal p1 authentication-method pre-shared-keys",
        "set security ike proposal p1 dh-group group19",
        "set security ike proposal p1 encryption-algorithm aes-256-cbc",
        "set security ike proposal p1 authentication-algorithm sha-256",
        "set security ike policy pol1 proposals p1",
        f'set security ike policy pol1 pre-shared-key ascii-text "{psk}"',
        "set security ike gateway peer ike-policy pol1",
        f"set security ike gateway peer address {peer}",
        "set security ike gateway peer external-interface ge-0/0/0.0",
        "set security ike gateway peer version v2-only",
        f"set security ike gateway peer local-identity hostname {side}.example",
        f"set security ike gateway peer remote-identity hostname "
        f"{'b' if side == 'a' else 'a'}.example",
        f"set security ipsec proposal e1 encryption-algorithm {cipher}",
        "set security ipsec proposal e1 protocol esp",
        "set security ipsec policy e1 proposals e1",
        "set security ipsec vpn vpn-1 bind-interface st0.0",
        "set security ipsec vpn vpn-1 ike gateway peer",
        "set security ipsec vpn vpn-1 ike ipsec-policy e1",
        f"set security ipsec vpn vpn-1 establish-tunnels {establish}",
        f"set security ipsec vpn vpn-1 traffic-selector ts local-ip {mine} remote-ip {theirs}",
        f"set routing-options {rib}static route {theirs} next-hop st0.0",
        "set system license ipsec-offload expires 2099-12-31",
    ]
    if integrity:
        lines.append(f"set security ipsec proposal e1 authentication-algorithm {integrity}")
    if df_bit:
        lines.append(f"set security ipsec vpn vpn-1 df-bit {df_bit}")
    if lifetime:
        lines.append(f"set security ipsec proposal e1 lifetime-seconds {lifetime}")
    return "\n".join(lines) + "\n"


class DaemonProc:
    """`inline-ipsec run CONFIG --tun st0` in a namespace, with its files in `workdir`."""

    def __init__(self, lab: Lab, ns: str, workdir: Path, config: str, *extra: str,
                 name: str = "d", capture: bool = True) -> None:
        self.lab, self.ns = lab, ns
        self.dir = workdir
        self.conf = workdir / f"{name}.conf"
        self.conf.write_text(config)
        self.control = str(workdir / f"{name}.sock")
        self.log = workdir / f"{name}.log"
        self.stdout = workdir / f"{name}.out"
        self.pcap = workdir / f"{name}.pcap"
        self.keys = workdir / f"{name}.esp_sa"
        self._out = open(self.stdout, "w")  # noqa: SIM115
        # DAEMON_PROFILE=1: each daemon runs under cProfile into NAME.prof
        profile = ["-m", "cProfile", "-o", str(workdir / f"{name}.prof")] \
            if os.environ.get("DAEMON_PROFILE") else []
        self.proc = lab.popen(ns, [sys.executable, *profile, "-m", "inline_ipsec", "run",
                                   str(self.conf), "--tun", "st0", "--control", self.control,
                                   "--log", str(self.log),
                                   *(("--pcap", str(self.pcap), "--esp-keys", str(self.keys))
                                     if capture else ()), *extra],
                              stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.control):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start:\n" + self.output())
            time.sleep(0.05)

    def cli(self, command: str, check: bool = True) -> str:
        res = sh(sys.executable, "-m", "inline_ipsec", "cli", self.control, command,
                 check=False, timeout=30)
        if check and res.returncode != 0:
            raise RuntimeError(f"cli {command!r}: {res.stdout}{res.stderr}\n" + self.output())
        return res.stdout + res.stderr

    def output(self) -> str:
        text = self.stdout.read_text() if self.stdout.exists() else ""
        log = self.log.read_text() if self.log.exists() else ""
        return f"--- stdout ---\n{text}\n--- log ---\n{log[-6000:]}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


def wait_for(predicate, timeout: float = 20, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def df_bits(d: DaemonProc) -> dict:
    """The DF bit of the first and the last ESP packet (plain or in UDP 4500) the daemon sent,
    from its capture (flushed every housekeeping pass: wait one)."""
    from scapy.layers.inet import IP, UDP
    from scapy.utils import rdpcap
    time.sleep(1.0)

    def esp(p) -> bool:
        if IP not in p or p[IP].src != d.lab.a_out:
            return False
        if p[IP].proto == 50:
            return True
        return UDP in p and p[UDP].dport == 4500 and bytes(p[UDP].payload)[:4] != bytes(4) \
            and len(p[UDP].payload) > 8
    sent = [p for p in rdpcap(str(d.pcap)) if esp(p)]
    return {"before": bool(sent[0][IP].flags.DF), "after": bool(sent[-1][IP].flags.DF)}


def settled(d: DaemonProc, quiet: float = 2.5, timeout: float = 15) -> bool:
    """The daemon's SPIs stayed the same for `quiet` seconds (both ends initiate at start;
    the duplicate pair goes within the backoff), so a traffic check sees one pair."""
    import re

    def spis() -> list:
        return re.findall(r"[<>]\d+\s+\S+\s+(0x[0-9a-f]{8})",
                          d.cli("show sec ipsec sa", check=False))
    deadline = time.monotonic() + timeout
    last, since = spis(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = spis()
        if now != last:
            last, since = now, time.monotonic()
        elif now and time.monotonic() - since >= quiet:
            return True
    return False
