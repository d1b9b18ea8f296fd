"""`VersionDispatch`: one pair of UDP ports for both IKE versions, sans-I/O.

The header's version octet (byte 17 of an ISAKMP/IKE header; RFC 2408 §3.1 "MjVer" 1,
RFC 7296 §3.1 major version 2) sends each datagram to the `IkeV1Manager` or the
`IkeManager`; everything else of the manager surface (`datagrams_to_send`, `get_timer`,
`handle_timer`, `next_event`, `keepalive_targets`, `sessions`, `connect`) is the union of the
two, so `udp.IkeUdpEndpoint` (and later the gateway) can drive both versions through one
socket pair, as Junos does for a mix of `v1-only` and `v2-only` gateways.
"""
from __future__ import annotations

from typing import Optional, Union

from ..config import IkeConfig
from ..constants import NON_ESP_MARKER
from ..events import IkeEvent
from ..manager import IkeManager
from ..v2.session import IkeV2Session
from .config import IkeV1Config
from .manager import IkeV1Manager
from .session import Addr, IkeV1Session

Session = Union[IkeV1Session, IkeV2Session]


def ike_major_version(data: bytes) -> Optional[int]:
    """The major version of an IKE datagram (non-ESP marker allowed), None if too short."""
    raw = data[4:] if data[:4] == NON_ESP_MARKER else data
    return raw[17] >> 4 if len(raw) >= 28 else None


class VersionDispatch:
    """An `IkeManager` and an `IkeV1Manager` behind the same ports."""

    def __init__(self, v2: IkeManager, v1: IkeV1Manager) -> None:
        self.v2 = v2
        self.v1 = v1
        #: datagrams neither version claims (too short, or another major version)
        self.dropped = 0
        self._turn = 0

    @property
    def sessions(self) -> list[Session]:
        return [*self.v2.sessions, *self.v1.sessions]

    def connect(self, config: Union[IkeConfig, IkeV1Config], remote_addr: Addr,
                now: float) -> Session:
        """Start an IKE SA of the configuration's version."""
        if isinstance(config, IkeV1Config):
            return self.v1.connect(config, remote_addr, now)
        return self.v2.connect(config, remote_addr, now)

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        if data == b"\xff":
            return            # NAT-T keepalive (RFC 3948 §2.3)
        version = ike_major_version(data)
        if version == 1:
            self.v1.receive_datagram(data, addr, now)
        elif version == 2:
            self.v2.receive_datagram(data, addr, now)
        else:
            self.dropped += 1

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        return self.v2.datagrams_to_send(now) + self.v1.datagrams_to_send(now)

    def get_timer(self) -> Optional[float]:
        times = [t for t in (self.v2.get_timer(), self.v1.get_timer()) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self.v2.handle_timer(now)
        self.v1.handle_timer(now)

    def next_event(self) -> Optional[tuple[Session, IkeEvent]]:
        """Events of both managers, taking turns so neither starves the other."""
        order = (self.v2, self.v1) if self._turn == 0 else (self.v1, self.v2)
        self._turn ^= 1
        for m in order:
            item = m.next_event()
            if item is not None:
                return item   # type: ignore[return-value]
        return None

    def keepalive_targets(self) -> list[Addr]:
        return self.v2.keepalive_targets() + self.v1.keepalive_targets()
