"""The control socket of a running gateway (`inline-ipsec run` serves, `inline-ipsec show`
asks): a Unix stream socket, one JSON request line per connection, one JSON reply.

    request:  {"show": "security ipsec statistics"}
    reply:    {"ok": true, "output": "ESP Statistics: ..."}   or   {"ok": false, "error": "..."}

`serve` is a single-threaded loop: it answers requests between traffic ticks, so the gateway
is never used from two threads. It stops by itself after `duration` seconds, or when
`stop()` is called (the CLI calls it from its SIGINT/SIGTERM handlers).
"""
from __future__ import annotations

import json
import os
import select
import socket
import stat
import tempfile
import time
from typing import Callable

__all__ = ["ControlError", "ControlServer", "default_control_path", "query"]

_MAX_REQUEST = 4096


class ControlError(RuntimeError):
    """No gateway answers on the control socket, or it answered with an error."""


def default_control_path() -> str:
    """`$XDG_RUNTIME_DIR/inline-ipsec.sock`, else `/tmp/inline-ipsec-<uid>.sock`."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "inline-ipsec.sock")
    return os.path.join(tempfile.gettempdir(), f"inline-ipsec-{os.getuid()}.sock")


def _stale(path: str) -> bool:
    """True if `path` is a socket nobody listens on (left by a killed gateway)."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except FileNotFoundError:
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
        return False
    except OSError:
        return True
    finally:
        probe.close()


class ControlServer:
    """Listens on `path`; `poll(timeout)` answers the requests that arrive within `timeout`
    with `handler(show_command) -> text` (a `ValueError` becomes an error reply)."""

    def __init__(self, path: str, handler: Callable[[str], str]) -> None:
        if os.path.exists(path):
            if not _stale(path):
                raise ControlError(f"{path} exists and is in use (another gateway running?)")
            os.unlink(path)
        self.path = path
        self.handler = handler
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o600)
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.requests = 0
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            if os.path.exists(self.path):
                os.unlink(self.path)

    def __enter__(self) -> "ControlServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def poll(self, timeout: float) -> int:
        """Answer the requests that arrive within `timeout` seconds; returns how many."""
        deadline = time.monotonic() + timeout
        answered = 0
        while not self._stopped:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                ready, _, _ = select.select([self.sock], [], [], left)
            except InterruptedError:          # a signal: the loop re-checks `stopped`
                continue
            if not ready:
                break
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                continue
            with conn:
                self._answer(conn)
            answered += 1
        return answered

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        data = b""
        try:
            while b"\n" not in data and len(data) < _MAX_REQUEST:
                chunk = conn.recv(_MAX_REQUEST)
                if not chunk:
                    break
                data += chunk
            request = json.loads(data.decode("utf-8").strip() or "{}")
            command = request.get("show")
            if not isinstance(command, str):
                raise ValueError("expected a request like {\"show\": \"security flow statistics\"}")
            reply = {"ok": True, "output": self.handler(command)}
        except (ValueError, KeyError) as exc:
            reply = {"ok": False, "error": str(exc)}
        except OSError:
            return
        self.requests += 1
        try:
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass


#: The largest reply a client reads (a show of 2000 tunnels in detail is a few MB).
MAX_REPLY = 64 << 20


def request(path: str, message: dict, timeout: float, start_hint: str) -> str:
    """Send one JSON request to the process listening on `path` and return its "output".
    Raises `ControlError` when nothing listens (`start_hint` says how to start one), the
    reply is late, too large or malformed, or the process reports an error."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except OSError as exc:
            raise ControlError(f"no gateway is listening on {path} ({exc.strerror or exc}); "
                               f"start one with: {start_hint}") from None
        sock.sendall(json.dumps(message).encode() + b"\n")
        data = bytearray()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_REPLY:
                raise ControlError(f"the reply from {path} is larger than {MAX_REPLY} bytes")
    except socket.timeout:
        raise ControlError(f"the gateway on {path} did not answer within {timeout} s") from None
    finally:
        sock.close()
    try:
        reply = json.loads(data.decode("utf-8"))
    except ValueError:
        raise ControlError(f"bad reply from {path}") from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        raise ControlError(reply.get("error", "unknown error") if isinstance(reply, dict)
                           else f"bad reply from {path}")
    return str(reply["output"])


def query(path: str, command: str, timeout: float = 5.0) -> str:
    """Ask the gateway listening on `path` for `show <command>`; returns the text.
    Raises `ControlError` when nothing listens or the gateway reports an error."""
    return request(path, {"show": command}, timeout, "inline-ipsec run CONFIG")
