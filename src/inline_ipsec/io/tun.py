"""The TUN device that carries the gateway's inner traffic (Linux `/dev/net/tun`).

Packets the host routes into the device are read here and go into the tunnels; decrypted
packets are written back and the host delivers or forwards them. The device is opened with
IFF_TUN | IFF_NO_PI, so every read is one bare IPv4 or IPv6 packet (no packet-information
header, no Ethernet). The kernel offers no multi-packet read on a TUN file descriptor without
virtio-net headers and GSO, so `read_burst` drains the device with non-blocking `read(2)`s
after one readiness wake-up: the poll is paid once per burst, the read once per packet.

With `vnet_hdr` the device is opened with IFF_VNET_HDR as well: every packet in either
direction follows a 10-byte virtio-net header. No offload is enabled (TUNSETOFFLOAD 0), so
what the host hands the gateway stays one whole, checksummed packet per read; the gain is on
the way back, where the burst path writes a run of one UDP flow's datagrams as a single
segmentation-offload write (`pfe.write_packets(coalesce=True)`), routed and forwarded once by
the kernel and cut into the same datagrams where they are delivered (Linux 6.2 or later;
an older kernel refuses it and gets one write per packet).

Addresses and routes are set with iproute2 (`ip`), as an administrator would: the st0 unit
addresses of the configuration and one route per destination the configuration sends into a
tunnel (static routes with an st0 next hop, and the remote traffic selectors, which Junos
installs as routes, docs/junos-formats.md). Closing the file descriptor removes the device with
its addresses and routes (it is not persistent).
"""
from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import shutil
import struct
import subprocess
from typing import Iterable, Optional, Sequence

__all__ = ["Tun", "TunError", "IFF_TUN", "IFF_NO_PI", "IFF_VNET_HDR"]

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
#: the virtio-net header of a plain packet (no GSO, checksum complete), 10 bytes
PLAIN_VNET_HDR = bytes(10)
_IP = shutil.which("ip") or "/usr/sbin/ip"


class TunError(OSError):
    """The TUN device cannot be created or configured (no /dev/net/tun, no CAP_NET_ADMIN)."""


class Tun:
    """A TUN interface `name` (created on open, gone on close); `vnet_hdr`: with virtio-net
    headers (module docstring)."""

    def __init__(self, name: str = "st0", mtu: int = 1400, vnet_hdr: bool = False) -> None:
        if not name or len(name) > 15:
            raise TunError(errno.EINVAL, f"{name!r}: an interface name has 1 to 15 characters")
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise TunError(exc.errno, f"cannot open /dev/net/tun: {exc.strerror}") from None
        try:
            flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
            ifr = struct.pack("16sH22x", name.encode(), flags)
            got = fcntl.ioctl(fd, TUNSETIFF, ifr)
            if vnet_hdr:
                fcntl.ioctl(fd, TUNSETOFFLOAD, 0)
        except OSError as exc:
            os.close(fd)
            raise TunError(exc.errno, f"cannot create TUN device {name}: {exc.strerror} "
                           "(needs CAP_NET_ADMIN)") from None
        self.fd = fd
        self.vnet_hdr = vnet_hdr
        self.name = got[:16].rstrip(b"\0").decode()
        self.mtu = mtu
        self.reads = self.writes = self.write_errors = 0
        self.routes: list[str] = []
        self.addresses: list[str] = []
        self._ip("link", "set", "dev", self.name, "mtu", str(mtu), "up")

    def _ip(self, *args: str) -> None:
        res = subprocess.run([_IP, *args], capture_output=True, text=True, timeout=10,
                             check=False)
        if res.returncode != 0:
            raise TunError(errno.EIO, f"ip {' '.join(args)}: {res.stderr.strip()}")

    def fileno(self) -> int:
        return self.fd

    def add_address(self, prefix: str) -> None:
        """An address of the interface (an st0 unit's `family inet address`)."""
        iface = ipaddress.ip_interface(prefix)
        extra = ("nodad",) if iface.version == 6 else ()
        self._ip("addr", "add", str(iface), "dev", self.name, *extra)
        self.addresses.append(str(iface))

    def add_route(self, prefix: str) -> None:
        """Send traffic for `prefix` into the device (replacing a route to the same prefix:
        the gateway's configuration owns the routes into its tunnels)."""
        net = ipaddress.ip_network(prefix, strict=False)
        fam = "-6" if net.version == 6 else "-4"
        self._ip(fam, "route", "replace", str(net), "dev", self.name)
        self.routes.append(str(net))

    def configure(self, addresses: Iterable[str], routes: Iterable[str]) -> list[str]:
        """Add `addresses` and `routes`; returns the problems (one line each), never raises
        for one bad entry."""
        problems = []
        for a in addresses:
            try:
                self.add_address(a)
            except (TunError, ValueError) as exc:
                problems.append(f"address {a}: {exc}")
        for r in dict.fromkeys(routes):
            try:
                self.add_route(r)
            except (TunError, ValueError) as exc:
                problems.append(f"route {r}: {exc}")
        return problems

    def read_burst(self, limit: int = 64) -> list[bytes]:
        """Up to `limit` packets waiting in the device, without blocking."""
        out = []
        read, fd, size = os.read, self.fd, self.mtu + 64
        skip = len(PLAIN_VNET_HDR) if self.vnet_hdr else 0
        for _ in range(limit):
            try:
                p = read(fd, size + skip)
            except (BlockingIOError, InterruptedError):
                break
            if skip:
                # no offload is enabled, so the header announces a plain, complete packet
                if len(p) <= skip or p[1] != 0 or p[0] & 1:
                    continue
                p = p[skip:]
            out.append(p)
        self.reads += len(out)
        return out

    def write_burst(self, packets: Sequence[bytes]) -> int:
        """Hand packets to the host; a packet the kernel refuses (not IP, too big) is
        counted in `write_errors`. Returns how many were written."""
        n = 0
        write, fd = os.write, self.fd
        if self.vnet_hdr:
            write = lambda fd, p: os.writev(fd, (PLAIN_VNET_HDR, p))  # noqa: E731
        for p in packets:
            try:
                write(fd, p)
                n += 1
            except BlockingIOError:
                self.write_errors += len(packets) - n
                break
            except OSError:
                self.write_errors += 1
        self.writes += n
        return n

    def close(self) -> None:
        """Bring the device down and remove it (with its addresses and routes)."""
        if self.fd < 0:
            return
        try:
            self._ip("link", "set", "dev", self.name, "down")
        except TunError:
            pass
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> "Tun":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tunnel_routes(config) -> tuple[list[str], list[str]]:
    """(addresses, routes) the TUN carries for `config`: the st0 units' addresses, the
    static routes whose next hop is an st0 unit, and each VPN's remote traffic selectors
    (Junos installs those as routes, auto route insertion)."""
    addresses: list[str] = []
    for iface, prefixes in config.interface_addresses.items():
        if iface.startswith("st0"):
            addresses += list(prefixes)
    routes: list[str] = []
    for route in config.static_routes:
        if str(route.next_hop or "").startswith("st0"):
            routes.append(str(route.prefix))
    for v in config.ipsec_vpns.values():
        for ts in v.traffic_selectors:
            if ts.remote_ip:
                routes.append(str(ts.remote_ip))
    return addresses, routes


def first_address(addresses: Sequence[str], version: int) -> Optional[str]:
    for a in addresses:
        iface = ipaddress.ip_interface(a)
        if iface.version == version:
            return str(iface.ip)
    return None
