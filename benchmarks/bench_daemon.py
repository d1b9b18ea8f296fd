"""Forwarding through `inline-ipsec run --tun` against strongSwan's userspace data path.

REQUIRES root (network namespaces, TUN devices, raw sockets) and strongSwan's charon with
kernel-libipsec (/usr/lib/ipsec/charon). Not collected by pytest (no test functions).

    python benchmarks/bench_daemon.py [--sizes 64 1400] [--seconds 3] [--rounds 3] [--json F]
                                      [--with list_io no_tun_gso]

The same four namespaces serve both systems, in the same run, in alternating rounds:

    hl (sender) -- ga (gateway) ==ESP, AES-GCM-128== gb (gateway) -- hr (receiver)

- daemon: `inline-ipsec run --tun` in ga and in gb (PFE, AES-GCM-128, plain ESP on raw sockets);
- strongSwan: charon 5.9 with kernel-libipsec in ga and in gb (its userspace ESP over a TUN
  device, ESP in UDP 4500, aes128gcm16).

A sender in hl offers UDP datagrams of the given IP packet size as fast as it can send them
(64 prebuilt packets per sendmmsg on a raw socket) for `seconds`; the receiver in hr counts
what arrives (recvmmsg, 64 per call); both move packets in C, leaving the cores to the
gateways. Each figure is
packets per second delivered end to end, which crosses one gateway's TUN read and encryption
and the other's decryption and TUN write: the maximum forwarding rate (RFC 2285 §3.6.1), the
best of a trial as fast as the sender can and trials paced at `--loads` times what that one
delivered (an overloaded gateway burns CPU on packets it later drops). The ratio daemon/strongSwan is computed per round
(both systems measured back to back), the median over rounds reported. The daemon's own
`show daemon statistics` then says where its time went per stage (TUN read/write, syscalls,
gateway work, crypto inside the engines).

The machine is shared: all four processes (sender, two gateways, receiver) share its cores,
alike for both systems.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "daemon"))
sys.path.insert(0, str(HERE.parent / "tests" / "interop"))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

from charon_harness import Charon  # noqa: E402
from lab import LEFT, RIGHT, DaemonProc, Lab, junos_psk, usable, wait_for  # noqa: E402

# The sender and the receiver move their datagrams with the burst-slot I/O calls (one C call
# per batch of 64, no Python object per packet), so that as much of the two cores as possible
# is left to the gateways under test; the same for both systems. The sender writes whole
# IPv4/UDP packets on a raw socket (IP_HDRINCL), with the UDP checksum and consecutive
# identifications a host's UDP socket gives them, which the kernel routes as it routes a UDP
# socket's.
SENDER = r"""
import socket, struct, sys, time
sys.path.insert(0, sys.argv[5])
from inline_ipsec import Burst
from inline_ipsec.pfe import Verdict, pipeline_arrays, send_packets
dst, port, size, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
src = sys.argv[6]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
s.setblocking(False)
body = bytes(max(0, size - 28))
def udp_checksum(pseudo_and_udp):
    b = pseudo_and_udp + bytes(len(pseudo_and_udp) % 2)
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return (~t & 0xFFFF) or 0xFFFF
ulen = 8 + len(body)
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, ulen)
udp = struct.pack("!HHHH", 40000, port, ulen, 0) + body
udp = udp[:6] + struct.pack("!H", udp_checksum(pseudo + udp)) + udp[8:]
# consecutive identifications, as a host's UDP socket numbers one flow's datagrams
pkts = [struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, i, 0, 64, 17, 0,
                    socket.inet_aton(src), socket.inet_aton(dst)) + udp for i in range(64)]
b = Burst.from_packets(pkts)
b.verdict[:64] = int(Verdict.WIRE)
arrays = pipeline_arrays(b)
wire = int(Verdict.WIRE)
rate = float(sys.argv[7])          # packets/s offered; 0: as fast as it can
start = time.monotonic()
end = start + seconds
sent = offered = 0
fd = s.fileno()
while True:
    now = time.monotonic()
    if now >= end:
        break
    k = 64
    if rate:
        k = min(64, int((now - start) * rate) - offered)
        if k <= 0:
            time.sleep(0.0002)
            continue
    sent += send_packets(arrays, fd, 4, k, wire).done
    offered += k
print(sent)
"""

RECEIVER = r"""
import select, socket, sys, time
sys.path.insert(0, sys.argv[4])
from inline_ipsec import Burst
from inline_ipsec.pfe import pipeline_arrays, recv_packets
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
s.setblocking(False)
b = Burst(64, 2048)
arrays = pipeline_arrays(b)
print("ready", flush=True)
seconds = float(sys.argv[3])
n = 0
first = last = None
deadline = time.monotonic() + seconds + 10
while time.monotonic() < deadline:
    r, _, _ = select.select([s], [], [], 1.0)
    if not r:
        if first is not None:
            break
        continue
    got = recv_packets(arrays, s.fileno(), 64, 128).done
    now = time.monotonic()
    if got and first is None:
        first = now
    n += got
    last = now
print(n, (last - first) if first and last and last > first else 0.0, flush=True)
"""


def cpu_seconds(pids) -> tuple[float, float]:
    """(user, system) CPU seconds of the processes `pids`, all their threads
    (/proc/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / tick, system / tick


def measure(lab: Lab, size: int, seconds: float, rate: float = 0.0) -> tuple[float, int, int]:
    """(packets/s delivered, sent, received) for one run of the UDP stream hl -> hr offered
    at `rate` packets/s (0: as fast as the sender can)."""
    src = str(HERE.parent / "src")
    rx = lab.popen("hr", [sys.executable, "-c", RECEIVER, RIGHT[4][1], "40009", str(seconds),
                          src], stdout=subprocess.PIPE, text=True)
    assert rx.stdout.readline().strip() == "ready"
    tx = lab.run("hl", sys.executable, "-c", SENDER, RIGHT[4][1], "40009", str(size),
                 str(seconds), src, LEFT[4][1], str(rate), timeout=seconds + 30)
    out, _ = rx.communicate(timeout=seconds + 30)
    n, span = out.split()
    n, span = int(n), float(span)
    return (n / span if span > 0 else 0.0), int(tx.stdout.strip()), n


def max_forwarding_rate(lab: Lab, sysobj, size: int, seconds: float, loads: list
                        ) -> tuple[float, int, int, float, float]:
    """The maximum forwarding rate (RFC 2285 §3.6.1): the highest delivered rate over a range
    of offered loads. First as fast as the sender can, then paced at `loads` times what that
    delivered: a gateway offered more than it can carry spends CPU on packets it then drops
    (a TUN or socket queue overflows), so the unpaced figure can sit below its capacity.
    Returns (pps, sent, received, CPU seconds, user CPU seconds) of the best trial."""
    best = None
    base = 0.0
    for k, factor in enumerate([0.0, *loads]):
        rate = 0.0 if k == 0 else base * factor
        u0, s0 = cpu_seconds(sysobj.pids())
        pps, sent, recv = measure(lab, size, seconds, rate)
        u1, s1 = cpu_seconds(sysobj.pids())
        if k == 0:
            base = pps
        trial = (pps, sent, recv, (u1 - u0) + (s1 - s0), u1 - u0)
        print(f"    offered {'as fast as possible' if not rate else f'{rate:,.0f} pps'}: "
              f"{pps:,.0f} pps delivered ({recv} of {sent})", flush=True)
        if best is None or pps > best[0]:
            best = trial
    return best


def _swanctl(lab: Lab, side: str) -> str:
    me, peer = (lab.a_out, lab.b_out) if side == "a" else (lab.b_out, lab.a_out)
    mine = (LEFT if side == "a" else RIGHT)[4][2]
    theirs = (RIGHT if side == "a" else LEFT)[4][2]
    return f"""
connections {{
    bench {{
        version = 2
        local_addrs = {me}
        remote_addrs = {peer}
        proposals = aes256-sha256-ecp256
        local {{
            auth = psk
            id = {side}.example
        }}
        remote {{
            auth = psk
            id = {'b' if side == 'a' else 'a'}.example
        }}
        children {{
            net {{
                local_ts = {mine}
                remote_ts = {theirs}
                esp_proposals = aes128gcm16
                mode = tunnel
                start_action = none
            }}
        }}
    }}
}}
secrets {{
    ike-1 {{
        id-1 = a.example
        id-2 = b.example
        secret = "daemon-test-psk-0123456789"
    }}
}}
"""


EXTRA: list = []


class Daemons:
    name = "inline-ipsec run"
    flags: tuple = ()

    def __init__(self, lab: Lab, work: Path) -> None:
        extra = ("--backend", "auto", *EXTRA, *self.flags)
        self.a = DaemonProc(lab, "ga", work, junos_psk(4, "a"), *extra, name="a",
                            capture=False)
        self.b = DaemonProc(lab, "gb", work, junos_psk(4, "b"), *extra, name="b",
                            capture=False)
        if not wait_for(lambda: "<" in self.a.cli("show sec ipsec sa", check=False) and
                        "<" in self.b.cli("show sec ipsec sa", check=False), 30):
            raise RuntimeError("the daemons' tunnel did not come up\n" + self.a.output())
        time.sleep(3)         # the duplicate pair of the crossing start goes

    def pids(self) -> list:
        return [self.a.proc.pid, self.b.proc.pid]

    def stats(self) -> tuple[str, str]:
        return self.a.cli("show daemon statistics"), self.b.cli("show daemon statistics")

    def close(self) -> None:
        self.a.stop()
        self.b.stop()


class ListDaemons(Daemons):
    """The same daemons moving packets as Python bytes (--list-io): what the burst-slot I/O
    saves, measured in the same run."""
    name = "inline-ipsec run --list-io"
    flags = ("--list-io",)


class NoGsoDaemons(Daemons):
    """The same daemons writing into the TUN one packet per write(2) (--no-tun-gso): what
    the segmentation-offload writes save, measured in the same run."""
    name = "inline-ipsec run --no-tun-gso"
    flags = ("--no-tun-gso",)


#: the daemon variants `--with` adds to every round, by row name
VARIANTS = {"list_io": ListDaemons, "no_tun_gso": NoGsoDaemons}


class Charons:
    name = "strongSwan kernel-libipsec"

    def __init__(self, lab: Lab, work: Path) -> None:
        self.c = []
        for side, ns in (("a", "ga"), ("b", "gb")):
            d = work / f"charon-{side}"
            d.mkdir(exist_ok=True)
            c = Charon(d, "", netns=lab.ns[ns], port=500, port_nat_t=4500,
                       install_routes=True)
            c.start()
            c.load(_swanctl(lab, side))
            self.c.append(c)
        proc = self.c[0].initiate("net", timeout=20)
        proc.communicate(timeout=30)
        if not wait_for(lambda: "INSTALLED" in self.c[1].list_sas(), 20):
            raise RuntimeError("charon's tunnel did not come up\n" + self.c[0].logs())
        time.sleep(1)

    def pids(self) -> list:
        return [c.proc.pid for c in self.c if c.proc is not None]

    def close(self) -> None:
        for c in self.c:
            c.stop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[64, 1400])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--nat-t", action="store_true",
                   help="the daemons use ESP in UDP 4500 (as charon's kernel-libipsec does) "
                        "instead of raw ESP")
    p.add_argument("--with", nargs="+", default=[], choices=sorted(VARIANTS),
                   dest="variants",
                   help="also measure these daemon variants in every round: list_io "
                        "(--list-io, packets as Python bytes), no_tun_gso (--no-tun-gso, one "
                        "TUN write per packet)")
    p.add_argument("--with-list-io", action="store_true", help="the same as --with list_io")
    p.add_argument("--loads", nargs="*", type=float, default=[1.1, 1.3, 1.6],
                   metavar="F", help="paced offered loads, as multiples of what the unpaced "
                   "trial delivered (the figure is the best of all trials, RFC 2285 §3.6.1)")
    args = p.parse_args(argv)
    if args.with_list_io and "list_io" not in args.variants:
        args.variants.append("list_io")
    if args.nat_t:
        EXTRA.extend(["--nat-t", "vpn-1"])
    why = usable()
    if why:
        print(f"bench_daemon: {why}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, "
                                f"{os.cpu_count()} cores", "python": platform.python_version(),
                     "seconds": args.seconds, "rounds": args.rounds, "sizes": {}}
    stats_text = ("", "")
    for size in args.sizes:
        rows = {"daemon": [], "strongswan": [], "ratio": [], "daemon_cpu_us": [],
                "strongswan_cpu_us": [], "cpu_ratio": []}
        for r in range(args.rounds):
            got = {}
            cpu = {}
            systems = [Daemons, Charons] + [VARIANTS[v] for v in args.variants]
            for system in systems if r % 2 == 0 else systems[::-1]:
                lab = Lab(4)
                try:
                    sysobj = system(lab, work / f"{size}-{r}-{system.__name__}")  \
                        if (work / f"{size}-{r}-{system.__name__}").mkdir() is None else None
                    try:
                        measure(lab, size, 0.5)                  # warm-up
                        pps, sent, recv, used, user = max_forwarding_rate(
                            lab, sysobj, size, args.seconds, args.loads)
                        got[system.__name__] = pps
                        cpu[system.__name__] = 1e6 * used / recv if recv else 0.0
                        user_share = user / used if used else 0.0
                        rows.setdefault(f"{system.__name__}_user_share", []).append(user_share)
                        print(f"size {size} round {r}: {system.name}: {pps:,.0f} pps "
                              f"({recv} of {sent} delivered), both gateways "
                              f"{cpu[system.__name__]:.1f} CPU us per packet "
                              f"({100 * user_share:.0f}% user, the rest in the kernel)",
                              flush=True)
                        if system is Daemons:          # the default daemon's, not --list-io
                            stats_text = sysobj.stats()
                    finally:
                        sysobj.close()
                finally:
                    lab.close()
            rows["daemon"].append(got["Daemons"])
            rows["strongswan"].append(got["Charons"])
            rows["ratio"].append(got["Daemons"] / got["Charons"] if got["Charons"] else 0.0)
            rows["daemon_cpu_us"].append(cpu["Daemons"])
            rows["strongswan_cpu_us"].append(cpu["Charons"])
            rows["cpu_ratio"].append(cpu["Charons"] / cpu["Daemons"] if cpu["Daemons"]
                                     else 0.0)
            for v in args.variants:
                key = VARIANTS[v].__name__
                rows.setdefault(v, []).append(got[key])
                rows.setdefault(f"{v}_cpu_us", []).append(cpu[key])
                rows.setdefault(f"{v}_ratio", []).append(
                    got[key] / got["Charons"] if got["Charons"] else 0.0)
        med = {k: statistics.median(v) for k, v in rows.items()}
        results["sizes"][str(size)] = {"samples": rows, "median": med,
                                       "daemon_stats_a": stats_text[0],
                                       "daemon_stats_b": stats_text[1]}
        print(f"size {size}: daemon {med['daemon']:,.0f} pps, strongSwan "
              f"{med['strongswan']:,.0f} pps, ratio {med['ratio']:.2f} (median of "
              f"{args.rounds}; target >= 3); gateway CPU per packet: daemon "
              f"{med['daemon_cpu_us']:.1f} us, strongSwan {med['strongswan_cpu_us']:.1f} us "
              f"(strongSwan/daemon {med['cpu_ratio']:.2f}); user-space share: daemon "
              f"{100 * med['Daemons_user_share']:.0f}%, strongSwan "
              f"{100 * med['Charons_user_share']:.0f}%")
        for v in args.variants:
            print(f"size {size}: {VARIANTS[v].name} {med[v]:,.0f} pps, ratio to "
                  f"strongSwan {med[f'{v}_ratio']:.2f}, gateway CPU per packet "
                  f"{med[f'{v}_cpu_us']:.1f} us")
        print("encrypting side:\n" + stats_text[0] + "decrypting side:\n" + stats_text[1])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
