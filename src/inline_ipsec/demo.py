"""`inline-ipsec demo`: the modelled PFE carrying tunnels between two gateways.

Two PFEs (one per gateway) hold four tunnels (IPv4 and IPv6, inside and outside, one of them
NAT-T), traffic crosses them both ways, a replayed, a forged and a stray packet are dropped and
counted, and a short throughput run compares the PFE with the raw OpenSSL loop."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from . import __version__
from .benchmark import IMIX, inner_ipv4_udp, inner_ipv6_udp, machine, quick_report
from .engine import Status
from .packet.burst import Burst
from .pfe import Pfe
from .sa import SaSpec


@dataclass
class DemoTunnel:
    name: str
    cipher: str
    outer6: bool
    inner6: bool
    udp_encap: bool = False
    esn: bool = False
    replay_window: int = 1024


TUNNELS = [
    DemoTunnel("vpn-v4", "aes-gcm-256", False, False, esn=True, replay_window=4096),
    DemoTunnel("vpn-v6", "aes-gcm-128", True, True),
    DemoTunnel("vpn-4in6", "aes-gcm-256", True, False),
    DemoTunnel("vpn-natt", "aes-gcm-128", False, False, udp_encap=True),
]
ENDPOINTS = {False: ("192.0.2.1", "198.51.100.1"), True: ("2001:db8::1", "2001:db8:ffff::1")}


def _specs(t: DemoTunnel, spi_ab: int, spi_ba: int) -> tuple[SaSpec, SaSpec]:
    a, b = ENDPOINTS[t.outer6]
    key_len = {"aes-gcm-128": 20, "aes-gcm-256": 36}[t.cipher]
    common = dict(cipher=t.cipher, udp_encap=t.udp_encap, esn=t.esn,
                  replay_window=t.replay_window)
    return (SaSpec(spi=spi_ab, key=os.urandom(key_len), tunnel_src=a, tunnel_dst=b, **common),
            SaSpec(spi=spi_ba, key=os.urandom(key_len), tunnel_src=b, tunnel_dst=a, **common))


def run(out=sys.stdout) -> int:
    w = out.write
    m = machine()
    w(f"inline-ipsec {__version__}: a model of SRX inline IPsec; the PFE is C over "
      f"{m['openssl']}\n\n")
    gw_a, gw_b = Pfe("gw-a.pfe0"), Pfe("gw-b.pfe0")
    rows = []
    for i, t in enumerate(TUNNELS):
        ab, ba = _specs(t, 0x10000 + i, 0x20000 + i)
        out_a, in_b = gw_a.add_outbound(ab), gw_b.add_inbound(ab)
        out_b, in_a = gw_b.add_outbound(ba), gw_a.add_inbound(ba)
        rows.append((t, ab, ba, out_a, in_b, out_b, in_a))

    w("Tunnels (both gateways: Hardware Offloaded: Yes)\n")
    w(f"  {'VPN':10} {'Algorithm':16} {'SPI a>b':>10} {'SPI b>a':>10} {'outer':>5} "
      f"{'inner':>5} {'NAT-T':>5} {'ESN':>4} {'window':>6}\n")
    for t, ab, ba, *_ in rows:
        w(f"  {t.name:10} {'ESP:' + t.cipher:16} {ab.spi:>#10x} {ba.spi:>#10x} "
          f"{'IPv6' if t.outer6 else 'IPv4':>5} {'IPv6' if t.inner6 else 'IPv4':>5} "
          f"{'yes' if t.udp_encap else 'no':>5} {'yes' if t.esn else 'no':>4} "
          f"{t.replay_window:>6}\n")

    w("\nTraffic: 256 packets each way per tunnel, in bursts of 32\n")
    for t, ab, ba, out_a, in_b, out_b, in_a in rows:
        for sender, out_h, receiver in ((gw_a, out_a, gw_b), (gw_b, out_b, gw_a)):
            make = inner_ipv6_udp if t.inner6 else inner_ipv4_udp
            packets = [make(64 + (37 * k) % 1300, k) for k in range(32)]
            burst = Burst.from_packets(packets, out_h)
            for _ in range(8):
                burst.load(packets, out_h)
                assert sender.encrypt_burst(burst) == 32
                assert receiver.decrypt_burst(burst) == 32
                assert burst.packets() == packets

    # Three bad packets at gateway b: a replay, a forged one, one for an SA it does not have.
    t, ab, ba, out_a, in_b, *_ = rows[0]
    inner = inner_ipv4_udp(100)
    wire = gw_a.encrypt(out_a, inner)
    forged = bytearray(gw_a.encrypt(out_a, inner))
    forged[-5] ^= 0x01
    stray = Pfe()
    stray_h = stray.add_outbound(SaSpec(spi=0x99999, cipher="aes-gcm-128", key=bytes(20),
                                        tunnel_src="192.0.2.1", tunnel_dst="198.51.100.1"))
    burst = Burst.from_packets([wire, wire, bytes(forged), stray.encrypt(stray_h, inner)])
    gw_b.decrypt_burst(burst)
    w("Bad packets at gw-b: " + ", ".join(
        f"{Status(int(s)).name}" for s in burst.status[:4]) + "\n")

    w("\nPer-SA counters at gw-b (inbound)\n")
    w(f"  {'VPN':10} {'SPI':>10} {'packets':>8} {'bytes':>9} {'auth fail':>9} "
      f"{'replay dup':>10} {'below win':>9}\n")
    for t, ab, ba, out_a, in_b, *_ in rows:
        c = gw_b.counters(in_b)
        w(f"  {t.name:10} {ab.spi:>#10x} {c.packets:>8} {c.bytes:>9} {c.auth_failed:>9} "
          f"{c.replay_duplicate:>10} {c.replay_below_window:>9}\n")
    e = gw_b.engine_counters()
    w(f"  no SA for the SPI: {e.unknown_spi}   malformed: {e.malformed}\n")

    w("\nThroughput, one core, AES-GCM-128, bursts of 32 (ratios measured in this run)\n")
    from .cli import print_bench_table
    print_bench_table(quick_report((64, 1400, IMIX), 128, 32, 150), out)
    w("\n'raw' is the same OpenSSL AES-GCM calls with no ESP work: the crypto limit. "
      "'naive' builds the same packets\nwith Python and cryptography's AESGCM. "
      "More: inline-ipsec bench --help\n")
    return 0
