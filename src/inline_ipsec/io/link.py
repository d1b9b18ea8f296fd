"""Links between two gateways: an in-memory wire, and UDP datagrams over loopback.

`WireLink` joins two gateways in one process: what one emits with `outbound` is handed to the
other's `inbound`, unchanged (or through a `tap` that may drop, duplicate or alter packets).

`UdpLink` carries each outer packet between two processes or threads as the payload of one UDP
datagram between two loopback ports (127.0.0.1 or ::1 only). An unprivileged program cannot
send raw IP, so the outer IPv4/IPv6 header (and the NAT-T UDP header inside it) travels as data
and the receiving gateway parses it as if it had come off the wire; the loopback UDP header
around it is transport only. Every receive loop is bounded by a packet count and a deadline.
"""
from __future__ import annotations

import ipaddress
import select
import socket
import time
from typing import Callable, Optional, Sequence

from ..dataplane.gateway import Gateway, Output

__all__ = ["WireLink", "UdpLink", "LOOPBACKS"]

LOOPBACKS = ("127.0.0.1", "::1")
Tap = Callable[[list[bytes]], list[bytes]]


class WireLink:
    """Two gateways on one in-memory wire. `send(a, packets)` pushes inner packets through
    `a` and delivers what `a` emits to the other gateway; returns the receiver's `Output`
    (its `delivered` are the inner packets), and keeps the sender's in `last_sent`."""

    def __init__(self, a: Gateway, b: Gateway, tap: Optional[Tap] = None) -> None:
        self.a, self.b = a, b
        self.tap = tap
        self.last_sent: Output = Output()
        self.packets_on_wire = 0

    def peer(self, gw: Gateway) -> Gateway:
        if gw is self.a:
            return self.b
        if gw is self.b:
            return self.a
        raise ValueError(f"{gw.name} is not on this link")

    def send(self, sender: Gateway, inner: Sequence[bytes]) -> Output:
        receiver = self.peer(sender)
        self.last_sent = sender.outbound(inner)
        return self.carry(receiver, self.last_sent.wire)

    def carry(self, receiver: Gateway, wire: list[bytes]) -> Output:
        """Hand outer packets to `receiver` (through the tap)."""
        if self.tap is not None:
            wire = self.tap(list(wire))
        self.packets_on_wire += len(wire)
        return receiver.inbound(wire)


def _check_loopback(host: str) -> None:
    if host not in LOOPBACKS and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host}: UdpLink binds loopback addresses only (127.0.0.1, ::1)")


class UdpLink:
    """One gateway's end of a UDP loopback link.

        a = UdpLink(gw_a, "127.0.0.1")            # port 0: the kernel picks one
        b = UdpLink(gw_b, "127.0.0.1", peer=a.address)
        a.peer = b.address
        a.send(inner_packets)                     # outbound, then one datagram per packet
        out = b.receive(max_packets=100, timeout=1.0)   # inbound on what arrived

    `receive` stops after `max_packets` datagrams or when `timeout` seconds pass, whichever
    comes first, and hands what arrived to the gateway in bursts of up to `burst` packets.
    """

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0,
                 peer: Optional[tuple] = None, burst: int = 64) -> None:
        _check_loopback(host)
        self.gateway = gateway
        self.burst = burst
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.peer = peer
        self.sent = 0
        self.received = 0

    @property
    def address(self) -> tuple:
        return self.sock.getsockname()[:2]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "UdpLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, inner: Sequence[bytes]) -> Output:
        """Encrypt `inner` through the gateway and send each outer packet as one datagram."""
        out = self.gateway.outbound(inner)
        self.send_wire(out.wire)
        return out

    def send_wire(self, wire: Sequence[bytes]) -> None:
        if self.peer is None:
            raise ValueError("no peer address")
        for pkt in wire:
            for _ in range(100):                     # bounded retry on a full socket buffer
                try:
                    self.sock.sendto(pkt, self.peer)
                    break
                except BlockingIOError:
                    select.select([], [self.sock], [], 0.01)
            self.sent += 1

    def receive(self, max_packets: int, timeout: float) -> Output:
        """Receive up to `max_packets` datagrams within `timeout` seconds and pass them to the
        gateway's `inbound`; returns the merged `Output`."""
        deadline = time.monotonic() + timeout
        total = Output()
        pending: list[bytes] = []
        got = 0
        while got < max_packets:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.sock], [], [], min(left, 0.05))
            if not ready:
                continue
            while got < max_packets:
                try:
                    data, _ = self.sock.recvfrom(65535)
                except BlockingIOError:
                    break
                pending.append(data)
                got += 1
                if len(pending) >= self.burst:
                    _merge(total, self.gateway.inbound(pending))
                    pending = []
        if pending:
            _merge(total, self.gateway.inbound(pending))
        self.received += got
        return total


def _merge(total: Output, part: Output) -> None:
    total.wire += part.wire
    total.local += part.local
    total.delivered += part.delivered
    total.ike += part.ike
    total.dropped += part.dropped
