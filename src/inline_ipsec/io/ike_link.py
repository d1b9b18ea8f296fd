"""Carrying IKE between gateways: in memory (`IkePump`), as outer UDP packets on the gateways'
own wire (`IkeOnWire`, through `Gateway.inbound`'s IKE demultiplexing), and over loopback UDP
(`IkeUdpPort`).

`IkeControl` is sans-I/O; these are its transports. `IkeUdpPort` is the only code here with
sockets: two non-blocking UDP sockets, the IKE port and the NAT-T port (RFC 3948 §2.2: on the
NAT-T port IKE messages carry the 4-byte non-ESP marker, which picks the socket to send from),
polled with `select` so that it fits the gateway runner's loop and one-process benchmarks.

    a_port, b_port = IkeUdpPort("127.0.0.1"), IkeUdpPort("127.0.0.1")
    ia, ib = pair_controls(a, b, a_port.transport, b_port.transport)
    a_port.attach(ia); b_port.attach(ib)
    ia.start(now); ib.start(now)
    run_udp([a_port, b_port], until=lambda: ia.up() and ib.up(), timeout=10)
"""
from __future__ import annotations

import ipaddress
import select
import socket
import time
from typing import Callable, Optional, Sequence

from ..ike.constants import NON_ESP_MARKER
from ..dataplane.gateway import Gateway
from ..control.ike_control import IkeControl
from ..control.keying import vpn_endpoints
from .link import LOOPBACKS

__all__ = ["IkeOnWire", "IkePump", "IkeUdpPort", "pair_controls", "run_udp"]

#: (host, IKE port, NAT-T port)
Transport = tuple[str, int, int]


def _peer_map(gw: Gateway, peer: Transport) -> dict[str, Transport]:
    """Every configured peer address of `gw`'s IKE VPNs -> `peer`'s transport."""
    out: dict[str, Transport] = {}
    for v in gw.config.ipsec_vpns.values():
        if v.ike is None:
            continue
        try:
            _, remote = vpn_endpoints(gw.config, v.name)
        except Exception:   # a VPN without an address: IkeControl reports it
            continue
        out[remote] = peer
    return out


def pair_controls(a: Gateway, b: Gateway, a_transport: Transport, b_transport: Transport,
                  a_kw: Optional[dict] = None, b_kw: Optional[dict] = None,
                  **kw: object) -> tuple[IkeControl, IkeControl]:
    """IKE controls for two gateways that reach each other at the given transports (the
    configured peer addresses are mapped onto them)."""
    ia = IkeControl(a, local=a_transport[:2], natt_port=a_transport[2],
                    peers=_peer_map(a, b_transport), **{**kw, **(a_kw or {})})  # type: ignore
    ib = IkeControl(b, local=b_transport[:2], natt_port=b_transport[2],
                    peers=_peer_map(b, a_transport), **{**kw, **(b_kw or {})})  # type: ignore
    return ia, ib


def _natt(data: bytes) -> bool:
    """Leaves from the NAT-T port: IKE behind the non-ESP marker, or a NAT-keepalive (RFC 3948
    §2.2, §2.3)."""
    return data.startswith(NON_ESP_MARKER) or data == b"\xff"


class IkePump:
    """Two `IkeControl`s joined in memory: each datagram goes to the other side with the
    sender's transport address (its NAT-T port when it carries the non-ESP marker)."""

    def __init__(self, a: IkeControl, b: IkeControl) -> None:
        self.a, self.b = a, b
        self.datagrams = 0
        self.log: list[tuple[str, bytes]] = []
        self.keep_log = False

    def step(self, now: float) -> int:
        moved = 0
        for src, dst, tag in ((self.a, self.b, "a->b"), (self.b, self.a, "b->a")):
            host, port = src.manager.local_addr[:2]
            for data, _addr in src.datagrams_to_send(now):
                sport = src.manager.natt_local_port if _natt(data) else port
                if self.keep_log:
                    self.log.append((tag, data))
                dst.receive(data, (host, sport), now)
                moved += 1
        self.datagrams += moved
        return moved

    def run(self, now: float, max_steps: int = 100) -> None:
        """Exchange datagrams until both sides are quiet."""
        for _ in range(max_steps):
            if not self.step(now):
                return

    def advance(self, now: float) -> None:
        """Fire the timers due at `now` on both sides, then exchange datagrams."""
        for c in (self.a, self.b):
            t = c.get_timer()
            if t is not None and t <= now:
                c.handle_timer(now)
        self.run(now)


class IkeOnWire:
    """IKE carried on the gateways' own wire, like the ESP packets: each datagram becomes an
    outer IPv4/IPv6 UDP packet (port 500, or 4500 with the non-ESP marker, RFC 3948 §2.2)
    that the receiving `Gateway.inbound` demultiplexes (`Output.ike`) and hands to its
    `IkeControl`. The controls' transports must be the gateways' configured addresses."""

    def __init__(self, a: IkeControl, b: IkeControl) -> None:
        self.a, self.b = a, b
        self.packets = 0

    def step(self, now: float) -> int:
        from .traffic import udp_packet
        moved = 0
        for src, dst in ((self.a, self.b), (self.b, self.a)):
            host = src.manager.local_addr[0]
            for data, addr in src.datagrams_to_send(now):
                natt = _natt(data)
                sport = src.manager.natt_local_port if natt else src.manager.local_addr[1]
                pkt = udp_packet(host, addr[0], data, sport, addr[1])
                for dgram in dst.gw.inbound([pkt]).ike:
                    dst.receive_from_data_path(dgram, now)
                moved += 1
        self.packets += moved
        return moved

    def run(self, now: float, max_steps: int = 100) -> None:
        for _ in range(max_steps):
            if not self.step(now):
                return


def _bind(host: str, port: int) -> socket.socket:
    fam = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((host, port))
    s.setblocking(False)
    return s


class IkeUdpPort:
    """An IKE socket and a NAT-T socket on a loopback address (port 0: any free port)."""

    def __init__(self, host: str = "127.0.0.1", ike_port: int = 0, natt_port: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if host not in LOOPBACKS and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"{host}: IKE over UDP runs on loopback addresses only")
        self.host = host
        self.ike_sock = _bind(host, ike_port)
        self.natt_sock = _bind(host, natt_port)
        self.clock = clock
        self.control: Optional[IkeControl] = None
        self.sent = self.received = 0

    @property
    def transport(self) -> Transport:
        return (self.host, self.ike_sock.getsockname()[1], self.natt_sock.getsockname()[1])

    def attach(self, control: IkeControl) -> None:
        self.control = control

    def flush(self) -> None:
        """Send what the control plane produced."""
        assert self.control is not None
        for data, addr in self.control.datagrams_to_send(self.clock()):
            sock = self.natt_sock if _natt(data) else self.ike_sock
            try:
                sock.sendto(data, tuple(addr[:2]))
                self.sent += 1
            except BlockingIOError:     # retransmission (RFC 7296 §2.1) recovers it
                pass

    def poll(self, timeout: float = 0.0) -> int:
        """Receive what arrived within `timeout`, fire due timers, send; returns datagrams
        received."""
        assert self.control is not None
        control = self.control
        t = control.get_timer()
        now = self.clock()
        if t is not None:
            timeout = max(0.0, min(timeout, t - now))
        ready, _, _ = select.select([self.ike_sock, self.natt_sock], [], [], timeout)
        got = 0
        for sock in ready:
            while True:
                try:
                    data, addr = sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                control.receive(data, addr[:2], self.clock())
                got += 1
        self.received += got
        t = control.get_timer()
        if t is not None and t <= self.clock():
            control.handle_timer(self.clock())
        self.flush()
        return got

    def close(self) -> None:
        self.ike_sock.close()
        self.natt_sock.close()

    def __enter__(self) -> "IkeUdpPort":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_udp(ports: Sequence[IkeUdpPort], until: Callable[[], bool], timeout: float = 10.0,
            slice_: float = 0.002) -> bool:
    """Poll `ports` (in one thread) until `until()` or `timeout`; True if `until()` held."""
    deadline = time.monotonic() + timeout
    for p in ports:
        p.flush()
    while time.monotonic() < deadline:
        if until():
            return True
        for p in ports:
            p.poll(slice_ / len(ports))
    return until()
