"""The daemon's control socket: Junos operational commands, abbreviations accepted.

    inline-ipsec cli /run/inline-ipsec.sock 'show sec ipsec sa'
    inline-ipsec cli /run/inline-ipsec.sock 'clear security ike security-associations 192.0.2.2'
    inline-ipsec cli /run/inline-ipsec.sock commit

Each word may be any unique prefix of a keyword the command allows at that place, as the Junos
CLI completes them (`sh sec ipsec sa` = `show security ipsec security-associations`; `sa` is
also the Junos alias of `security-associations`). Commands:

    show security ipsec security-associations [detail] [index <id> | vpn-name <name>]
    show security ipsec statistics [index <id> | vpn-name <name>]
    show security ipsec inactive-tunnels [detail]
    show security ike security-associations [detail]
    show security flow statistics
    show security <anything else the gateway shows>      (passed on verbatim)
    show daemon statistics         (model: per-stage time of the data path, syscalls)
    clear security ike security-associations [<peer-address>]
    clear security ipsec security-associations [vpn-name <name>]
    request security ike rekey [peer <address>]              (model: rekey IKE SAs, RFC 7296
    request security ipsec rekey [vpn-name <name>]            §1.3.2, child SAs, §1.3.3)
    commit                                                    (re-read the configuration)

The wire protocol is the gateway control socket's (`gateway.control`): one JSON request line,
`{"command": "..."}` (or `{"show": "..."}` from `inline-ipsec show`), one JSON reply.
"""
from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Optional

from .control_socket import ControlError, ControlServer, request

__all__ = ["CommandError", "Command", "CommandServer", "parse_command", "query_command",
           "GRAMMAR"]


class CommandError(ValueError):
    """A command the daemon does not understand (unknown, ambiguous or incomplete)."""


#: a node: keyword -> next node; "<name>" a free value; "" the command may end here;
#: "*" any further words go to the handler as they are
_END: dict = {"": True}


def _options(flags: tuple = (), valued: tuple = (), positional: Optional[str] = None) -> dict:
    """A node where `flags` and `valued` keywords (each followed by one value) may come in
    any order, and optionally one free positional value."""
    node: dict = {"": True}
    for f in flags:
        node[f] = node
    for v in valued:
        node[v] = {f"<{v}>": node}
    if positional:
        node[f"<{positional}>"] = node
    return node


GRAMMAR: dict = {
    "show": {"daemon": {"statistics": _END}, "security": {
        "ipsec": {
            "security-associations": _options(("detail", "brief"), ("index", "vpn-name")),
            "statistics": _options((), ("index", "vpn-name")),
            "inactive-tunnels": _options(("detail",)),
            "*": True,
        },
        "ike": {"security-associations": _options(("detail", "brief"), ("index",), "peer"),
                "*": True},
        "flow": {"statistics": _END, "*": True},
        "*": True,
    }},
    "clear": {"security": {
        "ike": {"security-associations": _options((), (), "peer")},
        "ipsec": {"security-associations": _options((), ("vpn-name", "index"))},
    }},
    "request": {"security": {
        "ike": {"rekey": _options((), ("peer",))},
        "ipsec": {"rekey": _options((), ("vpn-name",))},
    }},
    "commit": _END,
}

#: Junos aliases accepted beside the prefixes
_ALIASES = {"sa": "security-associations", "sec": "security"}


@dataclass
class Command:
    """A parsed command: the full keywords and values in order, and the values by name."""

    words: list[str]
    args: dict[str, str] = field(default_factory=dict)


def parse_command(text: str) -> Command:
    """Expand abbreviations (module docstring); raises `CommandError` with Junos' wording."""
    words = text.split()
    if not words:
        raise CommandError("syntax error, expecting <command>")
    node = GRAMMAR
    out: list[str] = []
    args: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        keys = [k for k in node if k and k != "*" and not k.startswith("<")]
        if word in keys:
            match = [word]
        elif _ALIASES.get(word) in keys:
            match = [_ALIASES[word]]
        else:
            match = [k for k in keys if k.startswith(word)]
        if len(match) == 1:
            key = match[0]
            out.append(key)
            node = node[key]
            i += 1
            continue
        if len(match) > 1:
            raise CommandError(f"syntax error, '{word}' is ambiguous: could be "
                               + ", ".join(sorted(match)))
        if node.get("*") is True:
            out += words[i:]          # passed on verbatim to the show handler
            break
        free = [k for k in node if k.startswith("<")]
        if free:
            name = free[0][1:-1]
            args[name] = word
            out.append(word)
            node = node[free[0]]
            i += 1
            continue
        expect = ", ".join(sorted(keys)) or "end of command"
        raise CommandError(f"syntax error, expecting one of: {expect} (got '{word}')")
    else:
        if "" not in node and node.get("*") is not True:
            keys = [k for k in node if k and k != "*"]
            raise CommandError("syntax error, the command is incomplete: expecting "
                               + ", ".join(sorted(keys)))
    return Command(out, args)


class CommandServer(ControlServer):
    """The control socket with the daemon's command handler (`handler(text) -> output`;
    a `ValueError` such as `CommandError` becomes an error reply)."""

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        data = b""
        try:
            while b"\n" not in data and len(data) < 4096:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            request = json.loads(data.decode("utf-8").strip() or "{}")
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object")
            text = request.get("command")
            if text is None and isinstance(request.get("show"), str):
                text = "show " + request["show"]
            if not isinstance(text, str):
                raise ValueError('expected a request like {"command": "show security flow '
                                 'statistics"}')
            reply = {"ok": True, "output": self.handler(text)}
        except (ValueError, KeyError) as exc:
            reply = {"ok": False, "error": str(exc)}
        except OSError:
            return
        self.requests += 1
        try:
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass


def query_command(path: str, text: str, timeout: float = 15.0) -> str:
    """Send one command to the daemon on `path`; its output. Raises `ControlError`."""
    return request(path, {"command": text}, timeout, "inline-ipsec run CONFIG --tun NAME")
