"""asyncio UDP adapter for GDOI (port 848, RFC 6407 §2.1.2): the only socket code of the
group VPN package. It drives a sans-I/O node (a `KeyServer` or a `GroupMember`) with the
datagrams it receives, the wall clock and one timer, and sends what the node queues.

    ep = await GdoiUdpEndpoint.create(lambda addr: KeyServer(groups, ike, addr), "192.0.2.1")
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Optional

from .constants import GDOI_PORT


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, holder: list["GdoiUdpEndpoint"]) -> None:
        self.holder = holder

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if self.holder:
            self.holder[0]._received(data, addr)


class GdoiUdpEndpoint:
    """A node on one UDP socket."""

    def __init__(self, loop: asyncio.AbstractEventLoop, node: Any,
                 transport: asyncio.DatagramTransport,
                 clock: Callable[[], float] = time.time) -> None:
        self.loop = loop
        self.node = node
        self.transport = transport
        self.clock = clock
        self.address: tuple = transport.get_extra_info("sockname")[:2]
        self.received = 0
        self.sent = 0
        self._timer: Optional[asyncio.TimerHandle] = None

    @classmethod
    async def create(cls, factory: Callable[[tuple], Any], host: str,
                     port: int = GDOI_PORT,
                     clock: Callable[[], float] = time.time) -> "GdoiUdpEndpoint":
        """Bind `host:port` (0 = any free port), then build the node with that address."""
        loop = asyncio.get_running_loop()
        holder: list[GdoiUdpEndpoint] = []
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(holder),
                                                           local_addr=(host, port))
        addr = transport.get_extra_info("sockname")[:2]
        ep = cls(loop, factory(addr), transport, clock)
        holder.append(ep)
        return ep

    def _received(self, data: bytes, addr: tuple) -> None:
        self.received += 1
        self.node.receive_datagram(data, addr[:2], self.clock())
        self.flush()

    def flush(self) -> None:
        """Send what the node queued and re-arm the timer (call after any API call)."""
        for data, addr in self.node.datagrams_to_send(self.clock()):
            self.transport.sendto(data, tuple(addr))
            self.sent += 1
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.node.get_timer()
        if when is not None:
            self._timer = self.loop.call_later(max(0.0, when - self.clock()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.node.handle_timer(self.clock())
        self.flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.transport.close()
