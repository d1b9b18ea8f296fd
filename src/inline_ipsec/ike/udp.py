"""asyncio UDP adapter for IKEv2: the only socket code of the IKE package.

Two sockets: the IKE port (500) and the NAT-T port (4500, RFC 3948 §2.2). On the NAT-T port
every IKE message is preceded by the 4-byte non-ESP marker and a 1-byte 0xFF datagram is a
NAT-keepalive (§2.3). Sessions keep the marker on the datagrams they return once they use the
NAT-T port, so the adapter picks the socket from the first four bytes (see `v2/session.py`).
Everything else, sessions by SPI included, is the sans-I/O `IkeManager`'s job.

    ep = await IkeUdpEndpoint.create("192.0.2.1", 500, 4500, lookup=config_for_peer)
    session = ep.connect(config, ("198.51.100.1", 500))
    session, event = await ep.next_event()
"""
from __future__ import annotations

import asyncio
from typing import Optional

from .config import IkeConfig
from .constants import NON_ESP_MARKER
from .events import IkeEvent
from .manager import ConfigLookup, IkeManager
from .v2.session import Addr, IkeV2Session


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, holder: list["IkeUdpEndpoint"], natt: bool) -> None:
        self.holder = holder  # filled once the endpoint exists (sockets are bound first)
        self.natt = natt

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if self.holder:
            self.holder[0]._received(data, addr, self.natt)


class IkeUdpEndpoint:
    """An `IkeManager` on an IKE socket and a NAT-T socket, driven by the asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, manager: IkeManager,
                 ike: asyncio.DatagramTransport, natt: asyncio.DatagramTransport,
                 keepalive_interval: float) -> None:
        self.loop = loop
        self.manager = manager
        self.ike_transport = ike
        self.natt_transport = natt
        self.ike_port: int = ike.get_extra_info("sockname")[1]
        self.natt_port: int = natt.get_extra_info("sockname")[1]
        #: RFC 3948 §2.3 NAT-keepalive period for sessions behind a NAT (0 disables).
        self.keepalive_interval = keepalive_interval
        self.keepalives_received = 0
        self.events: asyncio.Queue[tuple[IkeV2Session, IkeEvent]] = asyncio.Queue()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._keepalive: Optional[asyncio.TimerHandle] = None
        if keepalive_interval > 0:
            self._keepalive = loop.call_later(keepalive_interval, self._send_keepalives)

    @classmethod
    async def create(cls, host: str, ike_port: int = 500, natt_port: int = 4500, *,
                     lookup: Optional[ConfigLookup] = None,
                     keepalive_interval: float = 20.0) -> "IkeUdpEndpoint":
        """Bind both sockets on `host` (port 0 = any free port, for tests)."""
        loop = asyncio.get_running_loop()
        holder: list[IkeUdpEndpoint] = []
        ike, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(holder, False), local_addr=(host, ike_port))
        natt, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(holder, True), local_addr=(host, natt_port))
        manager = IkeManager((host, ike.get_extra_info("sockname")[1]),
                             natt.get_extra_info("sockname")[1], lookup)
        self = cls(loop, manager, ike, natt, keepalive_interval)
        holder.append(self)
        return self

    @property
    def sessions(self) -> list[IkeV2Session]:
        return self.manager.sessions

    def now(self) -> float:
        return self.loop.time()

    def connect(self, config: IkeConfig, remote_addr: Addr) -> IkeV2Session:
        """Start an IKE SA as initiator and send its first message."""
        session = self.manager.connect(config, remote_addr, self.now())
        self.flush()
        return session

    def _received(self, data: bytes, addr: tuple, natt: bool) -> None:
        if natt and data == b"\xff":
            self.keepalives_received += 1
            return
        if natt and not data.startswith(NON_ESP_MARKER):
            return  # ESP in UDP: the data plane's, not IKE's
        self.manager.receive_datagram(data, addr, self.now())
        self.flush()

    def flush(self) -> None:
        """Send what the sessions produced, queue their events, re-arm the timer. Call it
        after any API call on a session (rekey_child, close, ...)."""
        for data, addr in self.manager.datagrams_to_send(self.now()):
            transport = self.natt_transport if data.startswith(NON_ESP_MARKER) \
                else self.ike_transport
            transport.sendto(data, addr)
        while (item := self.manager.next_event()) is not None:
            self.events.put_nowait(item)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.manager.get_timer()
        if when is not None:
            self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.manager.handle_timer(self.now())
        self.flush()

    def _send_keepalives(self) -> None:
        for addr in self.manager.keepalive_targets():
            self.natt_transport.sendto(b"\xff", addr)
        self._keepalive = self.loop.call_later(self.keepalive_interval, self._send_keepalives)

    async def next_event(self, timeout: float = 10.0) -> tuple[IkeV2Session, IkeEvent]:
        return await asyncio.wait_for(self.events.get(), timeout)

    def close(self) -> None:
        for handle in (self._timer, self._keepalive):
            if handle is not None:
                handle.cancel()
        self._timer = self._keepalive = None
        self.ike_transport.close()
        self.natt_transport.close()

