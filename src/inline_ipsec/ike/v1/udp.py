"""asyncio UDP for IKEv1: the IKE package's `IkeUdpEndpoint` around an `IkeV1Manager`.

The endpoint only needs the manager's sans-I/O surface (`connect`, `receive_datagram`,
`datagrams_to_send`, `next_event`, `get_timer`, `handle_timer`, `keepalive_targets`), which
`IkeV1Manager` shares with `IkeManager`; this module binds the two sockets (IKE and NAT-T,
RFC 3948 §2.2) and hands them over.

    ep = await create_endpoint("192.0.2.1", 500, 4500, lookup=config_for_peer)
    session = ep.connect(config, ("198.51.100.1", 500))
"""
from __future__ import annotations

import asyncio
from typing import Optional

from ..udp import IkeUdpEndpoint, _Protocol
from .manager import ConfigLookup, IkeV1Manager


async def create_endpoint(host: str, ike_port: int = 500, natt_port: int = 4500, *,
                          lookup: Optional[ConfigLookup] = None,
                          keepalive_interval: float = 20.0,
                          endpoint_class: type = IkeUdpEndpoint) -> IkeUdpEndpoint:
    """Bind both sockets on `host` (port 0 = any free port) around an `IkeV1Manager`."""
    loop = asyncio.get_running_loop()
    holder: list[IkeUdpEndpoint] = []
    ike, _ = await loop.create_datagram_endpoint(lambda: _Protocol(holder, False),
                                                 local_addr=(host, ike_port))
    natt, _ = await loop.create_datagram_endpoint(lambda: _Protocol(holder, True),
                                                  local_addr=(host, natt_port))
    manager = IkeV1Manager((host, ike.get_extra_info("sockname")[1]),
                           natt.get_extra_info("sockname")[1], lookup)
    ep = endpoint_class(loop, manager, ike, natt, keepalive_interval)
    holder.append(ep)
    return ep
