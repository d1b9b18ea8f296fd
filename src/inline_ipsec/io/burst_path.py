"""The daemon's data path over burst slots: packets go from the TUN or a raw ESP socket into
a burst's slots, through the gateway's burst calls, and out to a raw socket or the TUN, each
step one C call with the GIL released (`pfe.read_packets` / `recv_packets` / `send_packets` /
`write_packets`), with no Python object per packet, as DPDK's rx/tx bursts feed VPP's graph.

    TUN --read_packets--> Gateway.outbound_burst --send_packets (raw, HDRINCL)--> peers
    raw ESP --recv_packets--> Gateway.inbound_burst --write_packets--> TUN

On a TUN with virtio-net headers (`tun_vnet`), `write_packets` sends each run of one UDP
flow's decrypted datagrams as one segmentation-offload write: the kernel routes and forwards
the run once and cuts it back into the same datagrams where they are delivered.

It sends plain ESP, and ESP in UDP that the engines built, on raw sockets that take the
whole outer header (IP_HDRINCL, IPV6_HDRINCL). It receives plain ESP on the raw sockets and
whatever arrives on the NAT-T ports (RFC 3948: ESP in UDP, IKE behind the non-ESP marker,
keepalives), each datagram behind its IP and UDP header rebuilt in C; the gateway's pipeline
tells them apart, and the IKE messages it punts are handed to IKE (`BurstOutput.ike`). What it
cannot carry takes the list-of-bytes path (`daemon.DataPath`) with the same results: the
packets the gateway punted to its Python path (CPU-path tunnels, ICMP errors, fragments),
outer packets of a family without such a socket, and everything while a capture (--pcap)
runs.

Outer packets up to `MAX_OUTER` bytes fit a slot (raw sockets deliver reassembled packets); a
longer one is dropped and counted (`truncated`), as an interface drops frames beyond its
jumbo MTU.
"""
from __future__ import annotations

import ipaddress
from typing import Callable, Optional, Sequence

from ..dataplane.gateway import NO_PUNTS, BurstOutput, Gateway
from ..packet.burst import DEFAULT_HEADROOM, Burst
from ..pfe import (IoResult, Verdict, count_packets, pipeline_arrays, read_packets,
                   recv_packets, recv_udp, send_packets, write_packets)

__all__ = ["BurstPath", "MAX_OUTER"]

#: the longest outer packet a slot holds (a 9000-byte jumbo frame's packet and more)
MAX_OUTER = 9216
_WIRE = int(Verdict.WIRE)
_DELIVER = int(Verdict.DELIVER)
_TAILROOM = 64


class BurstPath:
    """Two bursts (one per direction) of `size` slots, and the file descriptors they move
    between. `send_list` and `write_list` are the list-of-bytes outputs for what the burst
    path cannot carry itself (the daemon's writer threads, or direct writes)."""

    def __init__(self, gw: Gateway, *, tun_fd: int, tun_mtu: int, tun_vnet: bool = False,
                 raw: dict,
                 local_v6: Optional[str], size: int,
                 natt: Sequence[tuple[int, bytes, int]] = (),
                 send_list: Callable[[list], object],
                 write_list: Callable[[list], object]) -> None:
        self.gw = gw
        self.tun_fd = tun_fd
        #: the TUN has virtio-net headers; runs of one UDP flow leave in one GSO write
        self.tun_vnet = tun_vnet
        self.coalesce = tun_vnet
        self.headroom = DEFAULT_HEADROOM
        # an inner packet of the TUN's MTU, and an outer packet up to MAX_OUTER (with the
        # IPv6 header rebuilt in front), each with the tailroom an encapsulation needs
        self.read_cap = tun_mtu + 64
        slot = self.headroom + max(self.read_cap, MAX_OUTER + 40) + _TAILROOM
        slot = (slot + 63) // 64 * 64
        self.out_burst = Burst(size, slot, self.headroom)
        self.in_burst = Burst(size, slot, self.headroom)
        self._out = pipeline_arrays(self.out_burst)
        self._in = pipeline_arrays(self.in_burst)
        self.size = size
        #: raw sockets that take whole outer packets, by IP version: fd
        self.raw_fds = {v: r.sock.fileno() for v, r in raw.items()
                        if r.sock is not None and r.hdrincl}
        #: raw sockets to receive from, by fd: the IP version
        self.raw_versions = {r.sock.fileno(): v for v, r in raw.items() if r.sock is not None}
        self.local_v6 = ipaddress.ip_address(local_v6).packed if local_v6 else bytes(16)
        #: NAT-T UDP sockets, by fd: (local address packed, local port)
        self.natt_fds = {fd: (packed, port) for fd, packed, port in natt}
        self.send_list = send_list
        self.write_list = write_list
        #: what this path moved and refused (`show daemon statistics`, OuterSockets.counts)
        self.counts = dict.fromkeys(("tun_read", "esp_in", "esp_out", "send_errors",
                                     "send_dropped", "tun_written", "tun_write_errors",
                                     "truncated", "syscalls", "list_path",
                                     "tun_write_calls", "tun_coalesced", "tun_read_errors",
                                     "natt_in"), 0)

    @staticmethod
    def usable(raw: dict) -> bool:
        """A raw ESP socket that takes whole packets exists for some family."""
        return any(r.sock is not None and r.hdrincl for r in raw.values())

    # ------------------------------------------------------------------ outbound
    def read_tun(self) -> int:
        """One burst from the TUN into the outbound slots; the packets read."""
        r = read_packets(self._out, self.tun_fd, self.size, self.headroom, self.read_cap,
                         self.tun_vnet)
        self.counts["syscalls"] += r.calls
        self.counts["tun_read"] += r.done
        self.counts["tun_read_errors"] += r.errors
        self.out_burst.count = r.done
        return r.done

    def encrypt(self) -> BurstOutput:
        """Route and encrypt what `read_tun` read (in place)."""
        return self.gw.outbound_burst(self.out_burst)

    def send(self, res: BurstOutput) -> None:
        """The encrypted slots to the peers; the punted packets' results by the list path."""
        self._send_slots(self._out, self.out_burst)
        self._punted(res)

    def _send_slots(self, arrays, burst: Burst) -> None:
        """The slots with verdict WIRE on the raw sockets; those of a family without one by
        the list path."""
        n = burst.count
        for version in (4, 6):
            fd = self.raw_fds.get(version)
            if fd is not None:
                self._sent(send_packets(arrays, fd, version, n, _WIRE))
            elif count_packets(arrays, n, _WIRE, version):
                left = [burst.packet(i) for i in range(n) if burst.verdict[i] == _WIRE
                        and burst.data[i, burst.offset[i]] >> 4 == version]
                self.counts["list_path"] += len(left)
                self.send_list(left)

    def _punted(self, res: BurstOutput) -> None:
        """What the gateway's Python path made of the punted packets, by the list path."""
        if res is NO_PUNTS:
            return
        inner = [res.delivered[i] for i in sorted(res.delivered)]
        if inner:
            self.write_list(inner)
        wire = [p for i in sorted(res.wire) for p in res.wire[i]]
        if wire:
            self.send_list(wire)
        if res.local:                           # ICMP errors for the senders
            self.write_list(list(res.local))

    def _sent(self, r: IoResult) -> None:
        c = self.counts
        c["syscalls"] += r.calls
        c["esp_out"] += r.done
        c["send_errors"] += r.errors
        c["send_dropped"] += r.dropped

    # ------------------------------------------------------------------ inbound
    def receive(self, fd: int) -> int:
        """One recvmmsg from the raw ESP socket `fd` into the inbound slots."""
        v6 = self.local_v6 if self.raw_versions.get(fd) == 6 else None
        r = recv_packets(self._in, fd, self.size, self.headroom, v6)
        c = self.counts
        c["syscalls"] += r.calls
        c["esp_in"] += r.done
        c["truncated"] += r.truncated
        self.in_burst.count = r.done
        return r.done

    def receive_udp(self, fd: int) -> int:
        """One recvmmsg from the NAT-T socket `fd` into the inbound slots."""
        local, port = self.natt_fds[fd]
        r = recv_udp(self._in, fd, self.size, self.headroom, local, port)
        c = self.counts
        c["syscalls"] += r.calls
        c["natt_in"] += r.done
        c["truncated"] += r.truncated
        self.in_burst.count = r.done
        return r.done

    def decrypt(self) -> BurstOutput:
        """Demultiplex, decrypt and check what `receive` took (in place)."""
        return self.gw.inbound_burst(self.in_burst)

    def deliver(self, res: BurstOutput) -> None:
        """The decrypted slots into the TUN, those hairpinned into another tunnel to the
        peers; the punted packets' results by the list path."""
        n = self.in_burst.count
        r = write_packets(self._in, self.tun_fd, n, _DELIVER, self.tun_vnet, self.coalesce)
        c = self.counts
        if r.gso_refused:                 # a kernel without UDP GSO on TUN (before 6.2)
            self.coalesce = False
        c["syscalls"] += r.calls
        c["tun_write_calls"] += r.calls
        c["tun_coalesced"] += r.coalesced
        c["tun_written"] += r.done
        c["tun_write_errors"] += r.errors + r.dropped
        if count_packets(self._in, n, _WIRE):
            self._send_slots(self._in, self.in_burst)
        self._punted(res)
