"""`--pcap FILE`: a libpcap capture of what crosses the outer sockets and the TUN.

Every record is a bare IPv4 or IPv6 packet (link type LINKTYPE_RAW, 101), as it was on the wire
outside (ESP, ESP in UDP, IKE) or in the TUN inside (the inner packets before encryption and
after decryption); Wireshark and tshark dissect both, and with the `--esp-keys` table they
decrypt the ESP records too. Timestamps are microseconds of the wall clock. The file is flushed
after every burst so a capture is readable while the gateway runs, and its size can be bounded
(`limit` bytes; records past it are counted in `dropped`, never written half).
"""
from __future__ import annotations

import struct
import time
from typing import BinaryIO, Iterable, Optional

__all__ = ["PcapWriter", "LINKTYPE_RAW"]

LINKTYPE_RAW = 101
_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


class PcapWriter:
    """Appends packets to a pcap file (`write`), flushes on `flush`."""

    def __init__(self, path: str, snaplen: int = 65535, limit: Optional[int] = None) -> None:
        self.path = path
        self.snaplen = snaplen
        self.limit = limit
        self._f: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._f.write(_GLOBAL.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_RAW))
        self.size = _GLOBAL.size
        self.packets = 0
        self.dropped = 0

    def write(self, packets: Iterable[bytes], when: Optional[float] = None) -> None:
        t = time.time() if when is None else when
        sec = int(t)
        usec = int((t - sec) * 1_000_000)
        f = self._f
        for p in packets:
            cap = p[:self.snaplen]
            if self.limit is not None and self.size + 16 + len(cap) > self.limit:
                self.dropped += 1
                continue
            f.write(_RECORD.pack(sec, usec, len(cap), len(p)))
            f.write(cap)
            self.size += 16 + len(cap)
            self.packets += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()
