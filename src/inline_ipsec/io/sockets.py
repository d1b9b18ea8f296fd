"""The gateway's outer sockets: UDP 500 and 4500 and raw ESP on the external interfaces'
addresses, any address family.

- UDP 500 carries IKE (RFC 7296 §2). UDP 4500 carries IKE behind the four-byte non-ESP marker,
  NAT-keepalives (one 0xFF byte) and ESP in UDP (RFC 3948 §2.1-2.3); the payload's first bytes
  tell them apart (`classify_natt`).
- A raw IP socket for protocol 50 per family carries plain ESP (RFC 4303). It needs
  CAP_NET_RAW; without it only NAT-T works, and `RawEsp.status` says so: peers must then
  encapsulate (a peer behind no NAT sends plain ESP, which this host then cannot read).
  IPv4 sends with IP_HDRINCL, so the outer header the engines built (DF bit, DSCP, ECN, TTL,
  RFC 4303 §3.1.1, RFC 6040) leaves as built; IPv6 uses IPV6_HDRINCL where the kernel has it
  (Linux 4.5+), else the kernel writes the header. ESP in UDP leaves through the same raw
  socket, whole, from the NAT-T port the engines wrote, for the same reason; without a raw
  socket it leaves from the UDP 4500 socket and the kernel writes its outer header.

What arrives is handed on as the gateway's data path expects it, a whole outer IP packet: ESP
in UDP gets the IPv4/IPv6 and UDP header it came with rebuilt from the socket address (the
kernel verified the UDP checksum already; over IPv6 the rebuilt header carries a correct one,
which the data path verifies, RFC 3948 §2.1), IPv6 raw ESP gets its IPv6 header back (the
kernel strips it on IPv6 raw sockets).
"""
from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..ike.constants import NON_ESP_MARKER
from ..packet.ip import internet_checksum, udp6_checksum
from .batch import Batch

__all__ = ["OuterSockets", "RawEsp", "classify_natt", "ipv4_udp", "ipv6_header",
           "udp_packet_for"]

IPPROTO_ESP = 50
IPV6_HDRINCL = 36
_V4 = struct.Struct("!BBHHHBBH4s4s")
_V6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")


def classify_natt(data: bytes) -> str:
    """What a UDP 4500 payload is (RFC 3948 §2.2-2.3): "ike", "keepalive" or "esp"."""
    if data[:4] == NON_ESP_MARKER:
        return "ike"
    if data == b"\xff":
        return "keepalive"
    return "esp"


def ipv4_udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    """An IPv4 + UDP header in front of `payload` (UDP checksum zero, RFC 3948 §2.1 allows it
    for ESP in UDP over IPv4; the header checksum is computed)."""
    total = 28 + len(payload)
    hdr = bytearray(_V4.pack(0x45, 0, total, 0, 0x4000, 64, 17, 0, src, dst))
    struct.pack_into("!H", hdr, 10, internet_checksum(bytes(hdr)))
    return bytes(hdr) + _UDP.pack(sport, dport, 8 + len(payload), 0) + payload


def ipv6_header(src: bytes, dst: bytes, next_header: int, payload_length: int) -> bytes:
    return _V6.pack(6 << 28, payload_length, next_header, 64, src, dst)


def ipv6_udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    udp = bytearray(_UDP.pack(sport, dport, 8 + len(payload), 0) + payload)
    csum = udp6_checksum(src, dst, udp) or 0xFFFF
    struct.pack_into("!H", udp, 6, csum)
    return ipv6_header(src, dst, 17, len(udp)) + bytes(udp)


def udp_packet_for(src: tuple, dst: tuple, payload: bytes) -> bytes:
    """The outer packet a UDP datagram from `src` (host, port) to `dst` arrived in."""
    s, d = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    if s.version == 4:
        return ipv4_udp(s.packed, d.packed, src[1], dst[1], payload)
    return ipv6_udp(s.packed, d.packed, src[1], dst[1], payload)


@dataclass
class RawEsp:
    """The raw ESP socket of one address family, or why there is none."""

    family: int
    sock: Optional[socket.socket] = None
    hdrincl: bool = False
    status: str = ""


@dataclass
class _Local:
    """The UDP sockets of one local address."""

    address: str
    version: int
    packed: bytes
    ike: socket.socket
    natt: socket.socket
    ike_port: int
    natt_port: int


@dataclass
class Received:
    """One receive pass over every socket."""

    #: (payload with any non-ESP marker kept, (host, port), from the NAT-T port)
    ike: list = field(default_factory=list)
    #: whole outer IP packets carrying ESP (plain or in UDP)
    esp: list = field(default_factory=list)
    keepalives: int = 0
    #: outer packets as they were on the wire, IKE included (for --pcap)
    captured: list = field(default_factory=list)


def _udp(host: str, port: int, rcvbuf: int) -> socket.socket:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for opt, size in ((socket.SO_RCVBUF, rcvbuf), (socket.SO_SNDBUF, rcvbuf)):
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, size)
        except OSError:
            pass
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port))
    s.setblocking(False)
    return s


class OuterSockets:
    """UDP 500/4500 on every local address, raw ESP per family (module docstring).

    `addresses` are the external interfaces' addresses; `ike_port`/`natt_port` are 500/4500
    unless a test or a second instance on one host says otherwise. `burst` is how many
    datagrams one syscall moves."""

    def __init__(self, addresses: Sequence[str], *, ike_port: int = 500, natt_port: int = 4500,
                 raw_esp: bool = True, burst: int = 64, rcvbuf: int = 8 << 20) -> None:
        if not addresses:
            raise ValueError("no local address to bind: the configuration names no external "
                             "interface address for its gateways")
        self.locals: list[_Local] = []
        self.raw: dict[int, RawEsp] = {}        # filled below; `close` may run before that
        self.burst = burst
        try:
            for a in dict.fromkeys(addresses):
                ip = ipaddress.ip_address(a)
                ike = _udp(a, ike_port, rcvbuf)
                natt = _udp(a, natt_port, rcvbuf)
                self.locals.append(_Local(a, ip.version, ip.packed, ike, natt,
                                          ike.getsockname()[1], natt.getsockname()[1]))
        except OSError:
            self.close()
            raise
        for version in sorted({lo.version for lo in self.locals}):
            self.raw[version] = self._open_raw(version, raw_esp, rcvbuf)
        self._rx = Batch(burst)
        self._tx = Batch(burst)
        self._names: dict[bytes, str] = {}      # packed destination -> text, for sendto
        #: datagrams by kind, for the start-up report and show
        self.counts = {"ike_in": 0, "ike_out": 0, "esp_in": 0, "esp_out": 0,
                       "natt_esp_in": 0, "natt_esp_out": 0, "keepalive_in": 0,
                       "send_errors": 0, "foreign": 0}

    def _open_raw(self, version: int, wanted: bool, rcvbuf: int) -> RawEsp:
        fam = socket.AF_INET if version == 4 else socket.AF_INET6
        r = RawEsp(fam)
        if not wanted:
            r.status = "off (--no-raw-esp)"
            return r
        try:
            s = socket.socket(fam, socket.SOCK_RAW, IPPROTO_ESP)
        except PermissionError:
            r.status = "unavailable (no CAP_NET_RAW)"
            return r
        except OSError as exc:
            r.status = f"unavailable ({exc.strerror})"
            return r
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        except OSError:
            pass
        if version == 4:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            r.hdrincl = True
        else:
            try:
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
                r.hdrincl = True
            except OSError:
                r.hdrincl = False
        mine = [lo for lo in self.locals if lo.version == version]
        if len(mine) == 1:      # receive only what is sent to our address
            s.bind((mine[0].address, 0))
        s.setblocking(False)
        r.sock = s
        r.status = "available" + ("" if r.hdrincl else " (the kernel writes the IPv6 header)")
        return r

    # ------------------------------------------------------------------ reporting
    def report(self) -> list[str]:
        """What the start-up banner says about the outer sockets and what it means."""
        lines = []
        for lo in self.locals:
            lines.append(f"outer {lo.address}: udp {lo.ike_port} (IKE), udp {lo.natt_port} "
                         "(NAT-T: IKE, keepalives, ESP in UDP)")
        for version, r in self.raw.items():
            lines.append(f"raw ESP (IP protocol 50) over IPv{version}: {r.status}")
            if r.sock is None:
                lines.append(f"  IPv{version} peers must use NAT-T (UDP 4500); plain ESP from "
                             "them cannot be received or sent")
        return lines

    def fds(self) -> list:
        out: list = []
        for lo in self.locals:
            out += [lo.ike, lo.natt]
        out += [r.sock for r in self.raw.values() if r.sock is not None]
        return out

    def local_for(self, host: str) -> Optional[_Local]:
        version = 6 if ":" in host else 4
        return next((lo for lo in self.locals if lo.version == version), None)

    # ------------------------------------------------------------------ receive
    def receive(self, ready: Sequence, capture: bool = False) -> Received:
        """Drain the sockets in `ready` (one batch each)."""
        got = Received()
        c = self.counts
        for lo in self.locals:
            if lo.ike in ready:
                for data, addr in self._rx.recv(lo.ike):
                    got.ike.append((data, addr, False))
                    c["ike_in"] += 1
                    if capture:
                        got.captured.append(udp_packet_for(addr, (lo.address, lo.ike_port),
                                                           data))
            if lo.natt in ready:
                for data, addr in self._rx.recv(lo.natt):
                    kind = classify_natt(data)
                    if kind == "esp":
                        pkt = udp_packet_for(addr, (lo.address, lo.natt_port), data)
                        got.esp.append(pkt)
                        c["natt_esp_in"] += 1
                        if capture:
                            got.captured.append(pkt)
                        continue
                    if kind == "ike":
                        got.ike.append((data, addr, True))
                        c["ike_in"] += 1
                    else:
                        got.keepalives += 1
                        c["keepalive_in"] += 1
                    if capture:
                        got.captured.append(udp_packet_for(addr, (lo.address, lo.natt_port),
                                                           data))
        for version, r in self.raw.items():
            if r.sock is None or r.sock not in ready:
                continue
            for data, addr in self._rx.recv(r.sock, addresses=version == 6):
                if version == 6:
                    lo = self.local_for(addr[0])
                    src = ipaddress.ip_address(addr[0]).packed
                    data = ipv6_header(src, lo.packed if lo else bytes(16), IPPROTO_ESP,
                                       len(data)) + data
                elif len(data) < 20 or data[9] != IPPROTO_ESP:
                    c["foreign"] += 1
                    continue
                got.esp.append(data)
                c["esp_in"] += 1
                if capture:
                    got.captured.append(data)
        return got

    # ------------------------------------------------------------------ send
    def send_ike(self, datagrams: Sequence[tuple[bytes, tuple]], capture: Optional[list] = None
                 ) -> int:
        """IKE datagrams from `IkeControl.datagrams_to_send`: with the non-ESP marker (or a
        keepalive) from the NAT-T port, the others from the IKE port."""
        sent = 0
        for data, addr in datagrams:
            lo = self.local_for(addr[0])
            if lo is None:
                self.counts["send_errors"] += 1
                continue
            natt = data[:4] == NON_ESP_MARKER or data == b"\xff"
            sock = lo.natt if natt else lo.ike
            try:
                sock.sendto(data, (addr[0], addr[1]))
                sent += 1
                self.counts["ike_out"] += 1
            except OSError:
                self.counts["send_errors"] += 1     # retransmission recovers it (§2.1)
                continue
            if capture is not None:
                capture.append(udp_packet_for((lo.address, lo.natt_port if natt
                                               else lo.ike_port), addr, data))
        return sent

    def send_wire(self, packets: Sequence[bytes]) -> int:
        """Outer packets from `Gateway.outbound`, plain ESP and ESP in UDP, whole on the raw
        socket of their family (module docstring); ESP in UDP from the NAT-T socket, to the
        port the packet names, where there is no raw socket."""
        raw4: list = []
        raw6: list = []
        udp: dict[int, list] = {}
        c = self.counts
        names = self._names
        for pkt in packets:
            v = pkt[0] >> 4
            if v == 4:
                ihl = (pkt[0] & 15) * 4
                proto = pkt[9]
                raw_dst = pkt[16:20]
            else:
                ihl, proto = 40, pkt[6]
                raw_dst = pkt[24:40]
            dst = names.get(raw_dst)
            if dst is None:
                if len(names) > 4096:
                    names.clear()
                dst = names[raw_dst] = socket.inet_ntop(
                    socket.AF_INET if v == 4 else socket.AF_INET6, raw_dst)
            r = self.raw.get(v)
            if proto == 17 and (r is None or r.sock is None or not r.hdrincl):
                # no raw socket: the kernel writes the outer header of ESP in UDP
                dport = (pkt[ihl + 2] << 8) | pkt[ihl + 3]
                udp.setdefault(v, []).append((pkt[ihl + 8:], (dst, dport)))
            elif v == 4:
                raw4.append((pkt, (dst, 0)))
            else:
                raw6.append((pkt if r is not None and r.hdrincl else pkt[40:], (dst, 0)))
        sent = 0
        for version, items in ((4, raw4), (6, raw6)):
            if not items:
                continue
            r = self.raw.get(version)
            if r is None or r.sock is None:
                c["send_errors"] += len(items)
                continue
            n = self._tx.send(r.sock, items)
            c["esp_out"] += n                  # plain ESP and ESP in UDP as the engines built it
            c["send_errors"] += len(items) - n
            sent += n
        for version, items in udp.items():
            lo = next((x for x in self.locals if x.version == version), None)
            if lo is None:
                c["send_errors"] += len(items)
                continue
            n = self._tx.send(lo.natt, items)
            c["natt_esp_out"] += n
            c["send_errors"] += len(items) - n
            sent += n
        return sent

    @property
    def syscalls(self) -> int:
        return self._rx.calls + self._tx.calls

    def close(self) -> None:
        for lo in self.locals:
            lo.ike.close()
            lo.natt.close()
        for r in self.raw.values():
            if r.sock is not None:
                r.sock.close()
