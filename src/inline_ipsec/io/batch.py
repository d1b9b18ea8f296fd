"""Batched datagram syscalls: `recvmmsg(2)` and `sendmmsg(2)` through ctypes.

Python's socket module has neither; one syscall per burst instead of one per packet is what
keeps the daemon's outer sockets cheap (the kernel work per packet is the same, the
user/kernel crossing and the Python call are paid once per burst). The buffers, iovecs,
message headers and address storage are allocated once per `Batch` and reused.

    rx = Batch(64)
    for data, addr in rx.recv(sock): ...          # up to 64 datagrams, non-blocking
    tx = Batch(64)
    tx.send(sock, [(payload, ("192.0.2.1", 4500)), ...])

Where libc lacks the calls (not Linux), `available()` is False and both fall back to
`recvfrom`/`sendto` loops with the same results.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import socket
import struct
from typing import Optional, Sequence

__all__ = ["Batch", "available", "MAX_DATAGRAM"]

#: the largest datagram a buffer holds (an IPv4/IPv6 packet with jumbo headroom)
MAX_DATAGRAM = 65535
_MSG_DONTWAIT = 0x40


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.POINTER(_Iovec)), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


_SOCKADDR = 28          # sizeof(struct sockaddr_in6), the larger of the two

_libc = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _recvmmsg = _libc.recvmmsg
    _recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                          ctypes.c_void_p]
    _recvmmsg.restype = ctypes.c_int
    _sendmmsg = _libc.sendmmsg
    _sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    _sendmmsg.restype = ctypes.c_int
except (OSError, AttributeError):       # pragma: no cover - not Linux
    _libc = None


def available() -> bool:
    """recvmmsg/sendmmsg can be called (Linux glibc/musl)."""
    return _libc is not None


def _decode_addr(raw: bytes) -> Optional[tuple]:
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET:
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == socket.AF_INET6:
        port = struct.unpack_from("!H", raw, 2)[0]
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return None


def _encode_addr(host: str, port: int) -> bytes:
    if ":" in host:
        return struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0) + \
            socket.inet_pton(socket.AF_INET6, host) + b"\0\0\0\0"
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + \
        socket.inet_pton(socket.AF_INET, host) + bytes(8)


class Batch:
    """`size` message slots of `slot` bytes each, for one socket direction at a time."""

    def __init__(self, size: int = 64, slot: int = MAX_DATAGRAM) -> None:
        if size < 1:
            raise ValueError("a batch needs at least one slot")
        self.size = size
        self.slot = slot
        self._data = ctypes.create_string_buffer(size * slot)
        self._names = ctypes.create_string_buffer(size * _SOCKADDR)
        self._iov = (_Iovec * size)()
        self._msgs = (_Mmsghdr * size)()
        base = ctypes.addressof(self._data)
        names = ctypes.addressof(self._names)
        self._base = base
        for i in range(size):
            self._iov[i].iov_base = base + i * slot
            self._iov[i].iov_len = slot
            h = self._msgs[i].msg_hdr
            h.msg_name = names + i * _SOCKADDR
            h.msg_namelen = _SOCKADDR
            h.msg_iov = ctypes.pointer(self._iov[i])
            h.msg_iovlen = 1
        self._addr_cache: dict[tuple, bytes] = {}
        self._dirty = size             # slots whose lengths a call may have changed
        #: syscalls made and datagrams moved (for the daemon's statistics)
        self.calls = 0
        self.datagrams = 0
        #: datagrams the kernel refused (no route, message too long), and the last errno name
        self.errors = 0
        self.last_error = ""

    # ------------------------------------------------------------------ receive
    def recv(self, sock: socket.socket, limit: Optional[int] = None, addresses: bool = True
             ) -> list[tuple[bytes, Optional[tuple]]]:
        """Up to `limit` (default `size`) datagrams already queued on `sock`, without
        blocking: [(payload, (host, port))]. Raw sockets give (host, 0); with
        `addresses=False` the address is None (an IPv4 raw socket's packets carry it)."""
        n = min(limit or self.size, self.size)
        if _libc is None:                 # pragma: no cover
            return self._recv_loop(sock, n)
        msgs, iov, slot = self._msgs, self._iov, self.slot
        for i in range(min(n, self._dirty)):     # the slots the last call used
            msgs[i].msg_hdr.msg_namelen = _SOCKADDR
            iov[i].iov_len = slot
        got = _recvmmsg(sock.fileno(), ctypes.addressof(self._msgs), n, _MSG_DONTWAIT, None)
        self.calls += 1
        if got < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return []
            raise OSError(err, errno.errorcode.get(err, "recvmmsg failed"))
        out = []
        string_at = ctypes.string_at
        names = ctypes.addressof(self._names)
        base = self._base
        for i in range(got):
            length = msgs[i].msg_len
            addr = _decode_addr(string_at(names + i * _SOCKADDR, _SOCKADDR)) \
                if addresses else None
            out.append((string_at(base + i * slot, length), addr))
        self.datagrams += got
        self._dirty = max(got, 1)
        return out

    def _recv_loop(self, sock: socket.socket, n: int) -> list:   # pragma: no cover
        out = []
        for _ in range(n):
            try:
                data, addr = sock.recvfrom(self.slot)
            except (BlockingIOError, InterruptedError):
                break
            out.append((data, tuple(addr[:2])))
        return out

    # ------------------------------------------------------------------ send
    def send(self, sock: socket.socket, items: Sequence[tuple[bytes, tuple]]) -> int:
        """Send `items` [(payload, (host, port))] with as few syscalls as the batch size
        allows; returns how many the kernel took. A full socket buffer drops the rest (as a
        router drops on a full queue: IKE retransmits, ESP is datagram traffic); a datagram
        the kernel refuses (no route, too big) is skipped and counted in `errors`."""
        sent = 0
        pending = [it for it in items if len(it[0]) <= self.slot]
        self.errors += len(items) - len(pending)
        while pending:
            chunk = pending[:self.size]
            took = self._send_chunk(sock, chunk)
            if took < 0:                    # the first datagram was refused: skip it
                self.errors += 1
                pending = pending[1:]
                continue
            sent += took
            if took < len(chunk):
                if took == 0:
                    break                   # the socket buffer is full
                pending = pending[took:]
                continue
            pending = pending[took:]
        return sent

    def _send_chunk(self, sock: socket.socket, chunk: Sequence[tuple[bytes, tuple]]) -> int:
        if _libc is None:                 # pragma: no cover
            n = 0
            for data, addr in chunk:
                try:
                    sock.sendto(data, addr)
                except (BlockingIOError, InterruptedError):
                    break
                n += 1
            return n
        memmove = ctypes.memmove
        names = ctypes.addressof(self._names)
        base, slot = self._base, self.slot
        cache = self._addr_cache
        n = 0
        for data, addr in chunk:
            length = len(data)
            memmove(base + n * slot, data, length)
            self._iov[n].iov_len = length
            self._dirty = self.size
            key = (addr[0], addr[1])
            raw = cache.get(key)
            if raw is None:
                raw = _encode_addr(addr[0], addr[1])
                if len(cache) > 4096:
                    cache.clear()
                cache[key] = raw
            memmove(names + n * _SOCKADDR, raw, len(raw))
            self._msgs[n].msg_hdr.msg_namelen = len(raw)
            n += 1
        if n == 0:
            return 0
        done = _sendmmsg(sock.fileno(), ctypes.addressof(self._msgs), n, _MSG_DONTWAIT)
        self.calls += 1
        if done < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS):
                return 0
            self.last_error = errno.errorcode.get(err, str(err))
            return -1
        self.datagrams += done
        return done
