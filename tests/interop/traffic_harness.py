"""Real traffic through our PFE to and from a strongSwan charon in its own network namespace.

    default namespace (this test process)              namespace <ns> (made by the test)
    ------------------------------------               -------------------------------------
    IkeUdpEndpoint + Gateway (Pfe)                     charon (kernel-libipsec, TUN ipsec0)
      <net>.1/24 on veth <h> ---------------- veth <c> <net>.2/24
      (NAT-T scenario: <net>.3 = the "NAT")             10.2.0.1/32 on lo (protected address)
                                                        table 220: 10.1.0.0/24 dev ipsec0
                                                        (installed by charon itself)

Our side keeps its inner network (10.1.0.0/24) in user space: ICMP echo requests are built
here, encrypted by our Gateway's Pfe into ESP-in-UDP packets whose UDP payload goes out of the
IKE endpoint's NAT-T socket; charon decrypts them into its TUN, the namespace's kernel answers
the echo from 10.2.0.1 and routes the reply back into the TUN (charon's route for our TS),
charon encrypts it and sends it to our NAT-T socket, where the non-ESP-marker demux hands it
to the Gateway's inbound path (our Pfe decrypts it).

Only the namespace, the veth pair and their addresses are created; the subnet is one of the
documentation/shared ranges that does not overlap any route of this machine. Everything is
removed in `Topology.close()` (deleting the namespace deletes the veth pair).
"""
from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import os
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass, field
from typing import Optional

from inline_ipsec.config.model import License
from inline_ipsec.gateway import Gateway
from inline_ipsec.ike import ChildSaDown, ChildSaRekeyed, ChildSaUp, IkeSaDown
from inline_ipsec.ike.constants import NON_ESP_MARKER
from inline_ipsec.ike.udp import IkeUdpEndpoint
from inline_ipsec.pfe import Pfe

IP = shutil.which("ip") or "/usr/sbin/ip"
#: our inner network (in user space) and charon's protected network (in its namespace),
#: per address family: (our net, our host, their net, their host).
INNER = {4: ("10.1.0.0/24", "10.1.0.1", "10.2.0.0/24", "10.2.0.1"),
         6: ("2001:db8:a1::/64", "2001:db8:a1::1", "2001:db8:a2::/64", "2001:db8:a2::1")}
OUR_NET, OUR_HOST, THEIR_NET, THEIR_HOST = INNER[4]
#: outer (veth) subnets to choose from: the first that overlaps nothing on this machine.
CANDIDATE_NETS = {4: ("198.51.100.0/24", "203.0.113.0/24", "100.127.251.0/24",
                      "100.127.252.0/24"),
                  6: ("2001:db8:5100::/64", "2001:db8:5101::/64", "fdb5:a5e::/64")}
_counter = itertools.count()


def usable() -> Optional[str]:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not os.path.exists(IP):
        return "needs iproute2 (`ip`)"
    return None     # /dev/net/tun is required too (kernel-libipsec), but not a reason to skip


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([IP, *args], capture_output=True, text=True, timeout=10, check=False)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


def _free_subnet(family: int):
    """A candidate subnet that overlaps no route or address of the default namespace."""
    used = []
    fam = f"-{family}"
    for entry in json.loads(_ip("-j", fam, "route", "show", "table", "all").stdout or "[]"):
        try:        # "default" and the like are no prefixes
            used.append(ipaddress.ip_network(entry.get("dst", "default"), strict=False))
        except ValueError:
            pass
    for link in json.loads(_ip("-j", fam, "addr").stdout or "[]"):
        for a in link.get("addr_info", []):
            used.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for cand in CANDIDATE_NETS[family]:
        net = ipaddress.ip_network(cand)
        if not any(net.version == u.version and net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free test subnet among " + ", ".join(CANDIDATE_NETS[family]))


class Topology:
    """A network namespace for charon joined to the default namespace by a veth pair."""

    def __init__(self, nat_address: bool = False, family: int = 4) -> None:
        n = f"{os.getpid() % 100000}{next(_counter)}"
        self.ns = f"iipsec{n}"
        self.host_if, self.peer_if = f"iih{n}", f"iic{n}"
        self.family = family
        self.our_net, self.our_host, self.their_net, self.their_host = INNER[family]
        net = _free_subnet(family)
        self.prefixlen = net.prefixlen
        host_len = 32 if family == 4 else 128
        nodad = ("nodad",) if family == 6 else ()
        self.ours = str(net.network_address + 1)       # our IKE endpoint and Pfe
        self.theirs = str(net.network_address + 2)     # charon
        self.nat = str(net.network_address + 3)        # the NAT's address (NAT-T scenario)
        self.created = False
        try:
            _ip("netns", "add", self.ns)
            self.created = True
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if,
                "netns", self.ns)
            _ip("addr", "add", f"{self.ours}/{self.prefixlen}", "dev", self.host_if, *nodad)
            if nat_address:
                _ip("addr", "add", f"{self.nat}/{host_len}", "dev", self.host_if, *nodad)
            _ip("link", "set", self.host_if, "up")
            _ip("-n", self.ns, "addr", "add", f"{self.theirs}/{self.prefixlen}", "dev",
                self.peer_if, *nodad)
            _ip("-n", self.ns, "link", "set", self.peer_if, "up")
            _ip("-n", self.ns, "link", "set", "lo", "up")
            # the protected address charon's TS covers (kernel-libipsec needs a local address
            # inside its TS to install its route into the TUN)
            _ip("-n", self.ns, "addr", "add", f"{self.their_host}/{host_len}", "dev", "lo")
        except BaseException:
            self.close()
            raise

    def routes(self) -> str:
        """The namespace's routing (all tables) and policy rules, for messages."""
        fam = f"-{self.family}"
        return (_ip("-n", self.ns, fam, "route", "show", "table", "all", check=False).stdout
                + _ip("-n", self.ns, fam, "rule", check=False).stdout)

    def echo_counters(self) -> tuple[int, int]:
        """(echo requests received, echo replies sent) by the namespace's kernel, from its
        ICMP MIB (/proc/net/snmp, /proc/net/snmp6)."""
        path = "/proc/net/snmp" if self.family == 4 else "/proc/net/snmp6"
        res = subprocess.run([IP, "netns", "exec", self.ns, "cat", path],
                             capture_output=True, text=True, timeout=10, check=True)
        if self.family == 4:
            names, values = [line.split()[1:] for line in res.stdout.splitlines()
                             if line.startswith("Icmp:")]
            mib = dict(zip(names, map(int, values)))
            return mib["InEchos"], mib["OutEchoReps"]
        mib = dict(line.split() for line in res.stdout.splitlines() if line.strip())
        return int(mib["Icmp6InEchos"]), int(mib["Icmp6OutEchoReplies"])

    def close(self) -> None:
        if self.created:
            _ip("link", "del", self.host_if, check=False)
            _ip("netns", "del", self.ns, check=False)
            self.created = False


# ---- packets ----------------------------------------------------------------------------

def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int = 1) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto,
                      0, ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)
    return hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:] + payload


def ipv6(src: str, dst: str, nh: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64,
                       ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
                       ) + payload


def _pseudo6(src: str, dst: str, nh: int, length: int) -> bytes:
    return (ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
            + struct.pack("!I3xB", length, nh))


def icmp_echo(src: str, dst: str, ident: int, seq: int, data: bytes) -> bytes:
    """An ICMP (RFC 792) or ICMPv6 (RFC 4443, with its pseudo-header) echo request."""
    v6 = ipaddress.ip_address(src).version == 6
    body = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, ident, seq) + data
    csum = _checksum((_pseudo6(src, dst, 58, len(body)) if v6 else b"") + body)
    body = body[:2] + struct.pack("!H", csum) + body[4:]
    return ipv6(src, dst, 58, body) if v6 else ipv4(src, dst, 1, body, ident=seq)


@dataclass
class Echo:
    src: str
    dst: str
    type: int
    code: int
    ident: int
    seq: int
    data: bytes
    checksum_ok: bool


def parse_icmp(pkt: bytes) -> Echo:
    """An ICMP echo reply (type 0) or ICMPv6 echo reply (type 129; reported as 0)."""
    if pkt[0] >> 4 == 6:
        assert pkt[6] == 58, f"not ICMPv6: {pkt[:40].hex()}"
        src, dst = (str(ipaddress.ip_address(pkt[8:24])), str(ipaddress.ip_address(pkt[24:40])))
        body = pkt[40:40 + struct.unpack_from("!H", pkt, 4)[0]]
        ok = _checksum(_pseudo6(src, dst, 58, len(body)) + body) == 0
    else:
        assert pkt[0] >> 4 == 4 and pkt[9] == 1, f"not ICMPv4: {pkt[:20].hex()}"
        ihl = (pkt[0] & 15) * 4
        body = pkt[ihl:struct.unpack_from("!H", pkt, 2)[0]]
        src, dst = str(ipaddress.ip_address(pkt[12:16])), str(ipaddress.ip_address(pkt[16:20]))
        ok = _checksum(body) == 0
    t, c, _, ident, seq = struct.unpack_from("!BBHHH", body)
    if pkt[0] >> 4 == 6:
        t = {129: 0, 128: 8}.get(t, 256 + t)
    return Echo(src, dst, t, c, ident, seq, body[8:], ok)


def udp_payload(pkt: bytes) -> tuple[str, str, int, int, bytes]:
    """(src, dst, sport, dport, payload) of an outer IPv4/IPv6 UDP packet built by our Pfe."""
    if pkt[0] >> 4 == 6:
        nh, l4 = pkt[6], 40
        src, dst = pkt[8:24], pkt[24:40]
    else:
        assert pkt[0] >> 4 == 4, "outer IPv4 or IPv6 expected"
        nh, l4 = pkt[9], (pkt[0] & 15) * 4
        src, dst = pkt[12:16], pkt[16:20]
    assert nh == 17, f"ESP must be UDP-encapsulated (RFC 3948), protocol {nh}"
    sport, dport, ulen = struct.unpack_from("!HHH", pkt, l4)
    return (str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst)), sport, dport,
            pkt[l4 + 8:l4 + ulen])


def udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """The outer UDP packet as it was on the wire. The UDP checksum is 0 over IPv4 (RFC 3948
    §3.1.2 lets a sender do that) and computed over IPv6 (RFC 8200 §8.1)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if ipaddress.ip_address(src).version == 6:
        csum = _checksum(_pseudo6(src, dst, 17, len(udp)) + udp) or 0xFFFF
        return ipv6(src, dst, 17, udp[:6] + struct.pack("!H", csum) + udp[8:])
    return ipv4(src, dst, 17, udp)


# ---- our side ---------------------------------------------------------------------------

class DataEndpoint(IkeUdpEndpoint):
    """`IkeUdpEndpoint` whose NAT-T socket also delivers ESP in UDP (no non-ESP marker,
    RFC 3948 §2.2) to the data plane instead of dropping it."""

    def _received(self, data: bytes, addr: tuple, natt: bool) -> None:
        if natt and data != b"\xff" and not data.startswith(NON_ESP_MARKER):
            self.esp_queue.put_nowait((data, addr))
            return
        super()._received(data, addr, natt)

    @property
    def esp_queue(self) -> asyncio.Queue:
        """(ESP packet, source address) as they arrived on the NAT-T socket."""
        if "_esp" not in self.__dict__:
            self._esp: asyncio.Queue = asyncio.Queue()
        return self._esp


@dataclass
class PingResult:
    sent_spis: list[int] = field(default_factory=list)   # outbound SPI of every ESP packet
    replies: list[Echo] = field(default_factory=list)
    reply_spis: list[int] = field(default_factory=list)  # SPI of every ESP packet received


class OurSide:
    """Our IKE endpoint plus a Gateway whose child SAs come from the IKE events."""

    VPN = "to-charon"

    def __init__(self, ep: DataEndpoint, local_ip: str) -> None:
        self.ep = ep
        self.local_ip = local_ip
        family = ipaddress.ip_address(local_ip).version
        _, self.inner_src, _, self.inner_dst = INNER[family]
        self.gw = Gateway(name="py", license=License(expires=None))
        self.events: list = []
        self.session = None

    @classmethod
    async def create(cls, local_ip: str, **kw) -> OurSide:
        return cls(await DataEndpoint.create(local_ip, 0, 0, **kw), local_ip)

    def close(self) -> None:
        self.ep.close()

    def _apply(self, session, event) -> None:
        self.session = session
        self.events.append(event)
        if isinstance(event, (ChildSaUp, ChildSaRekeyed, ChildSaDown)):
            self.gw.handle_ike_event(self.VPN, event, self.local_ip, session.remote_addr[0])

    async def wait_for(self, cls, timeout: float = 15.0):
        """Apply IKE events to the gateway until one of type `cls` (IkeSaDown fails)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError(f"no {cls.__name__} within {timeout} s")
            try:
                session, event = await self.ep.next_event(left)
            except asyncio.TimeoutError:
                raise asyncio.TimeoutError(f"no {cls.__name__} within {timeout} s; events so "
                                           f"far: {self.events}") from None
            self._apply(session, event)
            if isinstance(event, cls):
                return event
            if isinstance(event, IkeSaDown):
                raise AssertionError(f"IKE SA went down: {event}")

    async def drain_events(self, seconds: float = 0.2) -> None:
        """Apply events that arrive within `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                session, event = await self.ep.next_event(left)
            except asyncio.TimeoutError:
                return
            self._apply(session, event)

    # -- data plane ---------------------------------------------------------------------------

    def tunnel(self):
        return self.gw.tunnel(self.VPN)

    def sa_count(self) -> int:
        """SAs installed on all engines of the gateway."""
        return sum(len(e) for e in self.gw.engines)

    async def ping(self, count: int = 3, timeout: float = 5.0) -> PingResult:
        """ICMP echo requests (our host -> their host, `INNER`) through our tunnel; the
        replies come back as ESP in UDP and are decrypted by our gateway."""
        res = PingResult()
        ident = int.from_bytes(os.urandom(2), "big") | 1
        for seq in range(1, count + 1):
            data = os.urandom(8) + b"inline-ipsec ping " + bytes([seq]) * 20
            out = self.gw.outbound([icmp_echo(self.inner_src, self.inner_dst, ident, seq, data)])
            assert len(out.wire) == 1, f"gateway did not encrypt the echo request: {out}"
            src, dst, sport, dport, esp = udp_payload(out.wire[0])
            if out.wire[0][0] >> 4 == 6:    # RFC 8200 §8.1: no zero UDP checksum over IPv6
                udp = out.wire[0][40:]
                assert udp[6:8] != b"\0\0" and \
                    _checksum(_pseudo6(src, dst, 17, len(udp)) + udp) == 0, "bad UDP checksum"
            assert (src, sport) == (self.local_ip, self.ep.natt_port), (src, sport)
            assert esp[:4] != bytes(4) and len(esp) > 8 + 16
            res.sent_spis.append(int.from_bytes(esp[:4], "big"))
            self.ep.natt_transport.sendto(esp, (dst, dport))
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise asyncio.TimeoutError(f"no echo reply for seq {seq}")
                try:
                    wire, addr = await asyncio.wait_for(self.ep.esp_queue.get(), left)
                except asyncio.TimeoutError:
                    raise asyncio.TimeoutError(
                        f"no ESP from charon for echo request seq {seq} within {timeout} s"
                    ) from None
                res.reply_spis.append(int.from_bytes(wire[:4], "big"))
                back = self.gw.inbound([udp_packet(addr[0], self.local_ip, addr[1],
                                                   self.ep.natt_port, wire)])
                if not back.delivered:
                    flow = self.gw.tunnel_flow(self.VPN)
                    raise AssertionError(f"our gateway dropped ESP from charon: {back}, "
                                         f"{self.gw.counters}, {flow}")
                echo = parse_icmp(back.delivered[0])
                res.replies.append(echo)
                if echo.ident == ident and echo.seq == seq and echo.type == 0:
                    assert echo.data == data, "echo reply data differs"
                    break
        return res


def inbound_counters(side: OurSide, spi: int):
    """Engine counters of our inbound SA `spi` (it must be installed)."""
    rec = side.tunnel()
    for p in rec.pairs:
        if p.inbound.spi == spi:
            return rec.engine.counters(p.inbound_handle)
    raise AssertionError(f"no inbound SA 0x{spi:08x} installed")


def outbound_counters(side: OurSide, spi: int):
    rec = side.tunnel()
    for p in rec.pairs:
        if p.outbound.spi == spi:
            return rec.engine.counters(p.outbound_handle)
    raise AssertionError(f"no outbound SA 0x{spi:08x} installed")


def assert_offloaded(side: OurSide, spi_in: int, spi_out: int) -> str:
    """The child SA pair is on one of our Pfes and shown as offloaded."""
    rec = side.tunnel()
    assert isinstance(rec.engine, Pfe) and rec.offloaded, rec
    assert [(p.inbound.spi, p.outbound.spi) for p in rec.pairs] == [(spi_in, spi_out)]
    detail = side.gw.show("security ipsec security-associations detail")
    assert "Hardware Offloaded: Yes" in detail and "Hardware Offloaded: No" not in detail, detail
    assert f"{spi_in:08x}" in detail.lower() and f"{spi_out:08x}" in detail.lower(), detail
    return detail


# ---- a NAT between us and charon (NAT-T scenario) -------------------------------------------

class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: NatRelay, inside: bool) -> None:
        self.relay, self.inside = relay, inside

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.relay.forward(data, addr, self.inside)


class NatRelay:
    """A user-space NAPT with one port forward (no kernel NAT here: the kernel has neither
    netfilter nor tc act_nat): we talk to <nat>:inside_port, charon sees us as
    <nat>:outside_port. It rewrites addresses and ports like a NAT box, so both ends' RFC 7296
    §2.23 NAT detection hashes really differ, and it counts what passes through."""

    def __init__(self) -> None:
        self.inside = self.outside = None
        self.us: Optional[tuple] = None
        self.charon: Optional[tuple] = None
        self.keepalives_from_us = 0
        self.esp_from_us = self.esp_from_charon = 0
        self.ike_from_us = self.ike_from_charon = 0

    @classmethod
    async def create(cls, nat_ip: str, us: tuple, charon: tuple) -> NatRelay:
        self = cls()
        self.us, self.charon = us, charon
        loop = asyncio.get_running_loop()
        self.inside, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self, True), local_addr=(nat_ip, 0))
        self.outside, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self, False), local_addr=(nat_ip, 0))
        return self

    @property
    def inside_port(self) -> int:
        return self.inside.get_extra_info("sockname")[1]

    @property
    def outside_port(self) -> int:
        return self.outside.get_extra_info("sockname")[1]

    def forward(self, data: bytes, addr: tuple, from_inside: bool) -> None:
        kind = "keepalive" if data == b"\xff" else \
            "ike" if data.startswith(NON_ESP_MARKER) else "esp"
        if from_inside:
            if kind == "keepalive":
                self.keepalives_from_us += 1
            elif kind == "esp":
                self.esp_from_us += 1
            else:
                self.ike_from_us += 1
            self.outside.sendto(data, self.charon)
        else:
            if kind == "esp":
                self.esp_from_charon += 1
            elif kind == "ike":
                self.ike_from_charon += 1
            self.inside.sendto(data, self.us)

    def close(self) -> None:
        for t in (self.inside, self.outside):
            if t is not None:
                t.close()
