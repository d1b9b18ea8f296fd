"""One log line per tunnel event, in the shape of the SRX's key-management daemon (kmd)
messages as they reach syslog:

    Dec  5 05:40:01 gw-a kmd[4242]: KMD_VPN_UP_ALARM_USER: VPN vpn-1 from 198.51.100.2 is
        up. Local-ip: 192.0.2.1, gateway name: gw-1, vpn name: vpn-1, tunnel-id: 131073,
        local tunnel-if: st0.0, SA Type: Static
    ... kmd[4242]: IKE_NEGOTIATION_SUCCESSFUL: IKE negotiation successfully completed. IKE
        Version: 2, VPN: vpn-1 Gateway: gw-1, Local: 192.0.2.1/500, Remote:
        198.51.100.2/500, Local IKE-ID: 192.0.2.1, Remote IKE-ID: 198.51.100.2, VR-ID: 0,
        Role: Initiator
    ... kmd[4242]: KMD_PM_SA_ESTABLISHED: Local gateway: 192.0.2.1, Remote gateway:
        198.51.100.2, Local ID: ipv4_subnet(any:0,[0..7]=10.1.0.0/24), Remote ID:
        ipv4_subnet(any:0,[0..7]=10.2.0.0/24), Direction: inbound, SPI: 0xc0a80101, AUX-SPI:
        0, Mode: Tunnel, Type: dynamic
    ... kmd[4242]: KMD_VPN_DOWN_ALARM_USER: VPN vpn-1 from 198.51.100.2 is down. Local-ip:
        192.0.2.1, ..., SA Type: Static, Reason: IKE SA down (deleted by peer)

(each message is one line; wrapped here).

The tags are Junos's; the fields are those the model knows (no routing instance, no AAA).
The daemon's own events (start, stop, configuration commits) use the same shape with the
`inline-ipsec` program name.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import socket
from typing import Callable, Optional, TextIO

__all__ = ["EventLog", "proxy_id"]


def proxy_id(prefixes) -> str:
    """Junos' rendering of a traffic selector, `ipv4_subnet(any:0,[0..7]=10.1.0.0/24)`."""
    if not prefixes:
        return "ipv4_subnet(any:0,[0..7]=0.0.0.0/0)"
    net = ipaddress.ip_network(str(prefixes[0]), strict=False)
    kind = "ipv4_subnet" if net.version == 4 else "ipv6_subnet"
    top = 7 if net.version == 4 else 31
    return f"{kind}(any:0,[0..{top}]={net})"


class EventLog:
    """Writes event lines to `stream` (stderr, or the `--log` file), flushed per line."""

    def __init__(self, stream: TextIO, host: Optional[str] = None,
                 clock: Callable[[], _dt.datetime] = _dt.datetime.now) -> None:
        self.stream = stream
        self.host = host or socket.gethostname().split(".")[0]
        self.clock = clock
        self.pid = os.getpid()
        self.lines = 0

    def emit(self, tag: str, text: str, program: str = "kmd") -> str:
        now = self.clock()
        stamp = now.strftime("%b ") + f"{now.day:2d} " + now.strftime("%H:%M:%S")
        line = f"{stamp} {self.host} {program}[{self.pid}]: {tag}: {text}"
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass                     # a closed or full log never stops the gateway
        self.lines += 1
        return line

    def daemon(self, text: str) -> str:
        return self.emit("INLINE_IPSEC", text, program="inline-ipsec")
