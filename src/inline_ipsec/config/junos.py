"""Parser for Junos `set` statements (the `show configuration | display set` form).

This file owns the grammar: which keywords may follow which, and the syntax of each value
(integers and their ranges, addresses, prefixes, keyword choices). Cross references between
stanzas (vpn -> gateway -> policy -> proposal, ...) are checked by `validate.py` afterwards.

Lexical rules (as the Junos CLI): a line ends at `\\n` (or `\\r\\n`) and nowhere else, so a form
feed or a Unicode line separator inside a comment stays in the comment; tokens are separated by
blanks; a double-quoted string is one token (`\\"` and `\\\\` escape inside it); `#` starts a
comment when it begins a token; `[ a b ]` lists several values for a list statement
(`proposals [ p1 p2 ]`). Blank lines are ignored. Text is Unicode; `load_config_file` reads
UTF-8 and reports each line that is not as an error of that line.

Supported statements (Junos 25.2R1 syntax, see docs/junos-formats.md), plus three of our own,
marked (*), which model things whose real syntax is elsewhere in Junos or unpublished:

    set security ike proposal <n> authentication-method|dh-group|encryption-algorithm|
                                  authentication-algorithm <kw> | lifetime-seconds <180..86400>
    set security ike policy <n> proposals <p>|[ <p>... ] | pre-shared-key ascii-text|hexadecimal <k>
                                | mode main|aggressive | certificate local-certificate <name>
    set security ike gateway <n> ike-policy <p> | address <ip>|[ ... ] | external-interface <if>
                                 | local-address <ip> | version v1-only|v2-only | ppk-profile <p>
                                 | nat-keepalive <1..300>
                                 | local-identity|remote-identity inet <ip>|inet6 <ip>|hostname <h>
                                   |user-at-hostname <u>|distinguished-name [container|wildcard <s>]
                                 | dead-peer-detection [optimized|probe-idle-tunnel|always-send]
                                   [interval <2..60>] [threshold <1..5>]
                                 | advpn suggester|partner [disable]  (marks an ADVPN gateway)
    set security ipsec proposal <n> protocol esp|ah | encryption-algorithm <kw>
                                    | authentication-algorithm <kw> | lifetime-seconds <180..86400>
                                    | lifetime-kilobytes <64..1048576> | extended-sequence-number
    set security ipsec policy <n> proposals <p>|[ ... ] | perfect-forward-secrecy keys groupN
    set security ipsec vpn <n> bind-interface st0.<N> | df-bit clear|set|copy | copy-outer-dscp
                               | establish-tunnels immediately|on-traffic
                               | ike gateway <g> | ike ipsec-policy <p>
                               | ike anti-replay-window-size <64..65536> | ike no-anti-replay
                               | traffic-selector <ts> [local-ip <pfx>] [remote-ip <pfx>]
                               | manual spi <256..16639> | manual protocol esp|ah
                               | manual encryption|authentication [algorithm <kw>]
                                 [key ascii-text|hexadecimal <k>]
                               | manual gateway <ip> | manual external-interface <if>
                               | ha-link-encryption   (Multinode HA ICL encryption)
                               | deployment-type site-to-site|mnha-icl|p2mp|group-vpn|advpn   (*)
    set security ipsec hw-offload-disable            (the model's spelling, see docs/junos-formats.md)
    set security key-manager profiles <p> static key-id|key ascii-text <s>
    set security flow power-mode-ipsec
    set interfaces st0 unit <N> family inet|inet6 [address <pfx>] | multipoint  (marks p2mp)
    set interfaces <ifd> unit <N> family inet|inet6 [address <pfx>]
    set routing-options static route <pfx> next-hop <st0.N|ip>
    set routing-options rib inet6.0 static route <pfx6> next-hop <st0.N|ip>
    set system license ipsec-offload expires <YYYY-MM-DD> | permanent                   (*)
    set chassis high-availability local-id <1..2> [local-ip <ip>]
                                  | peer-id <1..2> peer-ip <ip>|interface <ifl>|vpn-profile <vpn>
                                    |liveness-detection minimum-interval <ms>|multiplier <n>
                                  | services-redundancy-group <0..16> peer-id <n>
                                    |deployment-type routing|switching|hybrid
                                    |activeness-priority <1..254>|preemption
                                    |virtual-ip <n> ip <pfx>|interface <ifl>
                                    |monitor interface <if>|activeness-probe dest-ip <ip>
                                  (Multinode High Availability, config/high_availability.py)

(*) `deployment-type` states a VPN's deployment for docs/design.md Table 1. Junos itself implies it
from other stanzas; we accept those markers too (`interfaces st0 unit N multipoint` -> p2mp,
`ike gateway <g> advpn ...` -> advpn, `ipsec vpn <v> ha-link-encryption` -> mnha-icl) and
`validate.py` rejects a contradiction. Group VPN (`security group-vpn`) has no marker here.
`system license ipsec-offload` models the offload license (Junos installs licenses out of band;
see `License`).
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NoReturn, Optional, Sequence

from . import algorithms as alg
from .errors import ConfigIssue, shown
from .high_availability import HaBuilder
from .high_availability import parse_statement as parse_high_availability
from .model import (
    DEPLOYMENT_TYPES,
    Config,
    DeadPeerDetection,
    Identity,
    IkeGateway,
    IkePolicy,
    IkeProposal,
    IpsecPolicy,
    IpsecProposal,
    IpsecVpn,
    KeyManagerProfile,
    License,
    ManualSa,
    St0Unit,
    StaticRoute,
    TrafficSelector,
    VpnIke,
)

__all__ = ["decode", "parse", "tokenize", "Token"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
_NAME_RULE = "1 to 63 of A-Z a-z 0-9 _ . -, not starting with _ . -"
#: Highest logical unit number of an interface (st0.N, ge-0/0/0.N).
MAX_UNIT = 1048574
_IFL = f"an interface name like ge-0/0/0.0 (unit 0..{MAX_UNIT})"
_IFNAME_RE = re.compile(r"^[a-z][a-z0-9\-]*(\d+(/\d+)*)?\.\d+$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*$")


@dataclass(frozen=True)
class Token:
    text: str
    quoted: bool = False

    @property
    def shown(self) -> str:
        """The token as an error message quotes it (escaped and shortened, see `shown`)."""
        return f'"{shown(self.text)}"' if self.quoted else shown(self.text)


class _LexError(Exception):
    def __init__(self, message: str, token: str) -> None:
        super().__init__(message)
        self.token = token


def tokenize(line: str) -> list[Token]:
    """Split one line into tokens (quotes, `#` comments, `[`/`]` as their own tokens)."""
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            i += 1
        elif c == "#":
            break
        elif c == '"':
            start = i
            i += 1
            buf = []
            while True:
                if i >= n:
                    rest = line[start:].rstrip()
                    raise _LexError(f"unterminated quoted string '{shown(rest)}': "
                                    "expected a closing '\"'", rest)
                c = line[i]
                if c == "\\" and i + 1 < n:
                    buf.append(line[i + 1])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    buf.append(c)
                    i += 1
            tokens.append(Token("".join(buf), quoted=True))
        elif c in "[]":
            tokens.append(Token(c))
            i += 1
        else:
            j = i
            while j < n and not line[j].isspace() and line[j] not in '"[]':
                j += 1
            tokens.append(Token(line[i:j]))
            i = j
    return tokens


class _StatementError(Exception):
    def __init__(self, message: str, token: Optional[str]) -> None:
        super().__init__(message)
        self.message = message
        self.token = token


class _Cursor:
    """Walks the tokens of one statement, remembering the path for error messages."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    @property
    def path(self) -> str:
        """The statement so far, as an error message quotes it (each token shortened, and the
        middle of a very long statement left out)."""
        words = [t.shown for t in self.tokens[: self.pos]]
        if len(words) > 12:
            words = words[:6] + [f"... ({len(words) - 10} more) ..."] + words[-4:]
        return " ".join(words)

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def peek(self) -> Optional[Token]:
        return None if self.at_end() else self.tokens[self.pos]

    def fail(self, expected: str) -> NoReturn:
        tok = self.peek()
        if tok is None:
            raise _StatementError(f"incomplete statement '{self.path}': expected {expected}",
                                  None)
        raise _StatementError(
            f"unexpected '{tok.shown}' after '{self.path}': expected {expected}", tok.text
        )

    def keyword(self, choices: Sequence[str]) -> str:
        tok = self.peek()
        if tok is None or tok.quoted or tok.text not in choices:
            self.fail(_one_of(choices))
        self.pos += 1
        return tok.text

    def value(self, what: str, check: Optional[Callable[[str], Any]] = None) -> Any:
        """Next token as a value; `check` converts it or raises ValueError."""
        tok = self.peek()
        if tok is None or (not tok.quoted and tok.text in ("[", "]")):
            self.fail(what)
        if check is None:
            self.pos += 1
            return tok.text
        try:
            result = check(tok.text)
        except ValueError:
            self.fail(what)
        self.pos += 1
        return result

    def values(self, what: str, check: Optional[Callable[[str], Any]] = None) -> list[Any]:
        """One value, or `[ v1 v2 ... ]`."""
        tok = self.peek()
        if tok is not None and not tok.quoted and tok.text == "[":
            self.pos += 1
            out = []
            while True:
                tok = self.peek()
                if tok is not None and not tok.quoted and tok.text == "]":
                    self.pos += 1
                    break
                if tok is None:
                    self.fail(f"{what} or ']'")
                out.append(self.value(what, check))
            if not out:
                self.pos -= 1
                self.fail(what)
            return out
        return [self.value(what, check)]

    def integer(self, what: str, lo: int, hi: int) -> int:
        def check(text: str) -> int:
            if not text.isdigit() or not lo <= int(text) <= hi:
                raise ValueError
            return int(text)
        return int(self.value(f"{what} ({lo}..{hi})", check))

    def end(self) -> None:
        if not self.at_end():
            self.fail("end of statement")


def _named(what: str) -> str:
    return f"{what} ({_NAME_RULE})"


def _one_of(choices: Sequence[str]) -> str:
    if len(choices) == 1:
        return f"'{choices[0]}'"
    return "one of: " + ", ".join(choices)


# -- value checkers (raise ValueError on bad input) --------------------------------------------

def _name(text: str) -> str:
    if not _NAME_RE.match(text):
        raise ValueError
    return text


def _ip(text: str) -> str:
    return str(ipaddress.ip_address(text))


def _ip4(text: str) -> str:
    return str(ipaddress.IPv4Address(text))


def _ip6(text: str) -> str:
    return str(ipaddress.IPv6Address(text))


def _host_or_ip(text: str) -> str:
    try:
        return _ip(text)
    except ValueError:
        if _HOST_RE.match(text) and not text.replace(".", "").isdigit():
            return text
        raise


def _prefix(text: str) -> str:
    if "/" not in text:
        raise ValueError
    return str(ipaddress.ip_network(text, strict=True))


def _if_prefix(text: str) -> str:
    if "/" not in text:
        raise ValueError
    return str(ipaddress.ip_interface(text))


def _ifname(text: str) -> str:
    if not _IFNAME_RE.match(text) or int(text.rsplit(".", 1)[1]) > MAX_UNIT:
        raise ValueError
    return text


def _ifd(text: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9\-]*\d+(/\d+)*", text):
        raise ValueError
    return text


def _if_prefix_of(version: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        value = _if_prefix(text)
        if ipaddress.ip_interface(value).version != version:
            raise ValueError
        return value
    return check


def _st0(text: str) -> str:
    m = re.fullmatch(r"st0\.(\d+)", text)
    if not m or int(m.group(1)) > MAX_UNIT:
        raise ValueError
    return text


def _next_hop(text: str) -> str:
    try:
        return _ip(text)
    except ValueError:
        return _ifname(text)


def _hex_key(text: str) -> bytes:
    digits = text[2:] if text.lower().startswith("0x") else text
    if not digits or len(digits) % 2:
        raise ValueError
    return bytes.fromhex(digits)


def _date(text: str) -> _dt.date:
    return _dt.date.fromisoformat(text)


# -- builders: mutable while parsing, frozen at the end ----------------------------------------

class _Fields(dict):  # type: ignore[type-arg]
    """A stanza's attributes while parsing; remembers the line that set each one."""

    def __init__(self, parser: "_Parser", prefix: str = "",
                 lines: Optional[dict[str, int]] = None) -> None:
        super().__init__()
        self.parser = parser
        self.prefix = prefix
        self.lines: dict[str, int] = {} if lines is None else lines

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.lines[self.prefix + key] = self.parser.line

    def sub(self, key: str) -> "_Fields":
        """The nested stanza `key` (created on first use)."""
        if key not in self:
            self[key] = _Fields(self.parser, f"{self.prefix}{key}.", self.lines)
        value = self[key]
        assert isinstance(value, _Fields)
        return value

    def plain(self) -> dict[str, Any]:
        return {k: (v.plain() if isinstance(v, _Fields) else v) for k, v in self.items()}


class _Builder:
    def __init__(self, parser: "_Parser") -> None:
        self.parser = parser
        self.ike_proposals: dict[str, _Fields] = {}
        self.ike_policies: dict[str, _Fields] = {}
        self.ike_gateways: dict[str, _Fields] = {}
        self.ipsec_proposals: dict[str, _Fields] = {}
        self.ipsec_policies: dict[str, _Fields] = {}
        self.ipsec_vpns: dict[str, _Fields] = {}
        self.profiles: dict[str, _Fields] = {}
        self.st0: dict[int, _Fields] = {}
        self.interfaces: dict[str, list[str]] = {}
        self.routes: list[StaticRoute] = []
        self.hw_offload_disable = False
        self.power_mode_ipsec = False
        self.license: Optional[License] = None
        self.high_availability = HaBuilder()

    def entry(self, table: dict[Any, _Fields], key: Any, line: int) -> _Fields:
        if key not in table:
            table[key] = _Fields(self.parser)
            dict.__setitem__(table[key], "line", line)
        return table[key]

    @staticmethod
    def _kwargs(fields: _Fields) -> dict[str, Any]:
        kwargs = fields.plain()
        kwargs["field_lines"] = dict(fields.lines)
        return kwargs

    def freeze(self) -> Config:
        vpns = {}
        for name, f in self.ipsec_vpns.items():
            v = self._kwargs(f)
            if "ike" in v:
                v["ike"] = VpnIke(**v["ike"])
            if "manual" in v:
                v["manual"] = ManualSa(**v["manual"])
            if "traffic_selectors" in v:
                v["traffic_selectors"] = tuple(
                    TrafficSelector(name=ts, **fields)
                    for ts, fields in v["traffic_selectors"].items()
                )
            vpns[name] = IpsecVpn(name=name, **v)
        gateways = {}
        for name, f in self.ike_gateways.items():
            g = self._kwargs(f)
            if "dead_peer_detection" in g:
                g["dead_peer_detection"] = DeadPeerDetection(**g["dead_peer_detection"])
            gateways[name] = IkeGateway(name=name, **g)
        st0 = {}
        for unit, f in self.st0.items():
            u = self._kwargs(f)
            u["families"] = frozenset(u.get("families", ()))
            st0[unit] = St0Unit(unit=unit, **u)
        return Config(
            ike_proposals={n: IkeProposal(name=n, **self._kwargs(f))
                           for n, f in self.ike_proposals.items()},
            ike_policies={n: IkePolicy(name=n, **self._kwargs(f))
                          for n, f in self.ike_policies.items()},
            ike_gateways=gateways,
            ipsec_proposals={n: IpsecProposal(name=n, **self._kwargs(f))
                             for n, f in self.ipsec_proposals.items()},
            ipsec_policies={n: IpsecPolicy(name=n, **self._kwargs(f))
                            for n, f in self.ipsec_policies.items()},
            ipsec_vpns=vpns,
            key_manager_profiles={n: KeyManagerProfile(name=n, **self._kwargs(f))
                                  for n, f in self.profiles.items()},
            st0_units=st0,
            static_routes=tuple(self.routes),
            interface_addresses={k: tuple(v) for k, v in self.interfaces.items()},
            hw_offload_disable=self.hw_offload_disable,
            power_mode_ipsec=self.power_mode_ipsec,
            license=self.license,
            high_availability=self.high_availability.freeze(),
        )


def _append(fields: _Fields, key: str, values: list[Any]) -> None:
    current = list(fields.get(key, ()))
    for v in values:
        if v not in current:
            current.append(v)
    fields[key] = tuple(current)


# -- the grammar -------------------------------------------------------------------------------

class _Parser:
    def __init__(self) -> None:
        self.b = _Builder(self)
        self.issues: list[ConfigIssue] = []
        self.line = 0

    def statement(self, tokens: list[Token]) -> None:
        c = _Cursor(tokens)
        first = c.peek()
        assert first is not None
        if not first.quoted and first.text in ("deactivate", "delete", "insert", "activate",
                                               "annotate", "rename", "replace", "protect"):
            raise _StatementError(
                f"'{first.text}' statements are not supported (a deactivated or deleted "
                "statement would be silently dropped): expected 'set'", first.text)
        c.keyword(("set",))
        top = c.keyword(("security", "interfaces", "routing-options", "system", "chassis"))
        getattr(self, "_" + top.replace("-", "_"))(c)
        c.end()

    # set security ...
    def _security(self, c: _Cursor) -> None:
        what = c.keyword(("ike", "ipsec", "key-manager", "flow"))
        if what == "ike":
            kind = c.keyword(("proposal", "policy", "gateway"))
            name = c.value(_named(f"an IKE {kind} name"), _name)
            getattr(self, f"_ike_{kind}")(c, name)
        elif what == "ipsec":
            kind = c.keyword(("proposal", "policy", "vpn", "hw-offload-disable"))
            if kind == "hw-offload-disable":
                self.b.hw_offload_disable = True
                return
            name = c.value(_named(f"an IPsec {kind} name"), _name)
            getattr(self, f"_ipsec_{kind}")(c, name)
        elif what == "key-manager":
            c.keyword(("profiles",))
            name = c.value(_named("a key-manager profile name"), _name)
            fields = self.b.entry(self.b.profiles, name, self.line)
            c.keyword(("static",))
            item = c.keyword(("key-id", "key"))
            c.keyword(("ascii-text",))
            fields["key_id" if item == "key-id" else "key"] = c.value("a quoted string")
        else:
            c.keyword(("power-mode-ipsec",))
            self.b.power_mode_ipsec = True

    def _ike_proposal(self, c: _Cursor, name: str) -> None:
        f = self.b.entry(self.b.ike_proposals, name, self.line)
        stmt = c.keyword(("authentication-method", "dh-group", "encryption-algorithm",
                          "authentication-algorithm", "lifetime-seconds"))
        if stmt == "authentication-method":
            f["authentication_method"] = c.keyword(alg.IKE_AUTHENTICATION_METHODS)
        elif stmt == "dh-group":
            f["dh_group"] = c.keyword(tuple(alg.DH_GROUPS))
        elif stmt == "encryption-algorithm":
            f["encryption_algorithm"] = c.keyword(alg.IKE_ENCRYPTION_ALGORITHMS)
        elif stmt == "authentication-algorithm":
            f["authentication_algorithm"] = c.keyword(alg.IKE_AUTHENTICATION_ALGORITHMS)
        else:
            f["lifetime_seconds"] = c.integer("seconds", 180, 86400)

    def _ike_policy(self, c: _Cursor, name: str) -> None:
        f = self.b.entry(self.b.ike_policies, name, self.line)
        stmt = c.keyword(("proposals", "pre-shared-key", "mode", "certificate"))
        if stmt == "proposals":
            _append(f, "proposals", c.values(_named("an IKE proposal name"), _name))
        elif stmt == "pre-shared-key":
            form = c.keyword(("ascii-text", "hexadecimal"))
            if form == "ascii-text":
                f["pre_shared_key"] = c.value("the key as a quoted string")
            else:
                f["pre_shared_key"] = c.value("the key as hexadecimal digits",
                                              _hex_key).decode("latin-1")
        elif stmt == "mode":
            f["mode"] = c.keyword(("main", "aggressive"))
        else:
            c.keyword(("local-certificate",))
            f["local_certificate"] = c.value(_named("a certificate identifier"), _name)

    def _ike_gateway(self, c: _Cursor, name: str) -> None:
        f = self.b.entry(self.b.ike_gateways, name, self.line)
        stmt = c.keyword(("ike-policy", "address", "external-interface", "local-address",
                          "version", "ppk-profile", "nat-keepalive", "local-identity",
                          "remote-identity", "dead-peer-detection", "advpn"))
        if stmt == "ike-policy":
            f["ike_policy"] = c.value(_named("an IKE policy name"), _name)
        elif stmt == "address":
            _append(f, "address", c.values("an IP address or host name", _host_or_ip))
        elif stmt == "external-interface":
            f["external_interface"] = c.value(_IFL, _ifname)
        elif stmt == "local-address":
            f["local_address"] = c.value("an IP address", _ip)
        elif stmt == "version":
            f["version"] = c.keyword(("v1-only", "v2-only"))
        elif stmt == "ppk-profile":
            f["ppk_profile"] = c.value(_named("a key-manager profile name"), _name)
        elif stmt == "nat-keepalive":
            f["nat_keepalive"] = c.integer("seconds", 1, 300)
        elif stmt in ("local-identity", "remote-identity"):
            f[stmt.replace("-", "_")] = self._identity(c)
        elif stmt == "dead-peer-detection":
            dpd = f.sub("dead_peer_detection")
            while not c.at_end():
                item = c.keyword(("optimized", "probe-idle-tunnel", "always-send",
                                  "interval", "threshold"))
                if item == "interval":
                    dpd["interval"] = c.integer("seconds", 2, 60)
                elif item == "threshold":
                    dpd["threshold"] = c.integer("a count", 1, 5)
                else:
                    dpd["mode"] = item
        else:
            role = c.keyword(("suggester", "partner"))
            if not c.at_end():
                role += " " + c.keyword(("disable",))
            f["advpn"] = role

    @staticmethod
    def _identity(c: _Cursor) -> Identity:
        kind = c.keyword(("inet", "inet6", "hostname", "user-at-hostname",
                          "distinguished-name"))
        if kind == "inet":
            return Identity(kind, c.value("an IPv4 address", _ip4))
        if kind == "inet6":
            return Identity(kind, c.value("an IPv6 address", _ip6))
        if kind == "hostname":
            return Identity(kind, c.value("a host name"))
        if kind == "user-at-hostname":
            def email(text: str) -> str:
                if text.count("@") != 1 or text.startswith("@") or text.endswith("@"):
                    raise ValueError
                return text
            return Identity(kind, c.value("an identity like user@example.net", email))
        if c.at_end():
            return Identity(kind)
        match = c.keyword(("container", "wildcard"))
        return Identity(kind, f"{match} {c.value('a distinguished-name string')}")

    def _ipsec_proposal(self, c: _Cursor, name: str) -> None:
        f = self.b.entry(self.b.ipsec_proposals, name, self.line)
        stmt = c.keyword(("protocol", "encryption-algorithm", "authentication-algorithm",
                          "lifetime-seconds", "lifetime-kilobytes", "extended-sequence-number"))
        if stmt == "protocol":
            f["protocol"] = c.keyword(("esp", "ah"))
        elif stmt == "encryption-algorithm":
            f["encryption_algorithm"] = c.keyword(tuple(alg.IPSEC_ENCRYPTION_TO_CIPHER))
        elif stmt == "authentication-algorithm":
            f["authentication_algorithm"] = c.keyword(
                tuple(alg.IPSEC_AUTHENTICATION_TO_INTEGRITY))
        elif stmt == "lifetime-seconds":
            f["lifetime_seconds"] = c.integer("seconds", 180, 86400)
        elif stmt == "lifetime-kilobytes":
            f["lifetime_kilobytes"] = c.integer("kilobytes", 64, 1048576)
        else:
            f["extended_sequence_number"] = True

    def _ipsec_policy(self, c: _Cursor, name: str) -> None:
        f = self.b.entry(self.b.ipsec_policies, name, self.line)
        stmt = c.keyword(("proposals", "perfect-forward-secrecy"))
        if stmt == "proposals":
            _append(f, "proposals", c.values(_named("an IPsec proposal name"), _name))
        else:
            c.keyword(("keys",))
            f["pfs_group"] = c.keyword(tuple(alg.DH_GROUPS))

    def _ipsec_vpn(self, c: _Cursor, name: str) -> None:
        f = self.b.entry(self.b.ipsec_vpns, name, self.line)
        stmt = c.keyword(("bind-interface", "ike", "manual", "df-bit", "copy-outer-dscp",
                          "establish-tunnels", "traffic-selector", "deployment-type",
                          "ha-link-encryption"))
        if stmt == "bind-interface":
            f["bind_interface"] = c.value(
                f"a secure tunnel interface st0.<unit> (unit 0..{MAX_UNIT})", _st0)
        elif stmt == "ike":
            ike = f.sub("ike")
            item = c.keyword(("gateway", "ipsec-policy", "anti-replay-window-size",
                              "no-anti-replay"))
            if item == "gateway":
                ike["gateway"] = c.value(_named("an IKE gateway name"), _name)
            elif item == "ipsec-policy":
                ike["ipsec_policy"] = c.value(_named("an IPsec policy name"), _name)
            elif item == "anti-replay-window-size":
                ike["anti_replay_window_size"] = c.integer("packets", 64, 65536)
            else:
                ike["no_anti_replay"] = True
        elif stmt == "manual":
            self._manual(c, f.sub("manual"))
        elif stmt == "df-bit":
            f["df_bit"] = c.keyword(("clear", "set", "copy"))
        elif stmt == "copy-outer-dscp":
            f["copy_outer_dscp"] = True
        elif stmt == "establish-tunnels":
            f["establish_tunnels"] = c.keyword(("immediately", "on-traffic"))
        elif stmt == "traffic-selector":
            ts_name = c.value(_named("a traffic-selector name"), _name)
            ts = f.sub("traffic_selectors").sub(ts_name)
            if c.at_end():
                c.fail("one of: local-ip, remote-ip")
            while not c.at_end():
                side = c.keyword(("local-ip", "remote-ip"))
                ts[side.replace("-", "_")] = c.value("an IP prefix like 10.0.0.0/8", _prefix)
        elif stmt == "ha-link-encryption":
            f["ha_link_encryption"] = True
        else:
            f["deployment_type"] = c.keyword(DEPLOYMENT_TYPES)

    @staticmethod
    def _manual(c: _Cursor, m: _Fields) -> None:
        item = c.keyword(("spi", "protocol", "encryption", "authentication", "gateway",
                          "external-interface"))
        if item == "spi":
            m["spi"] = c.integer("an SPI", 256, 16639)
        elif item == "protocol":
            m["protocol"] = c.keyword(("esp", "ah"))
        elif item == "gateway":
            m["gateway"] = c.value("an IP address", _ip)
        elif item == "external-interface":
            m["external_interface"] = c.value(_IFL, _ifname)
        else:
            algorithms = (tuple(alg.IPSEC_ENCRYPTION_TO_CIPHER) if item == "encryption"
                          else tuple(alg.IPSEC_AUTHENTICATION_TO_INTEGRITY))
            if c.at_end():
                c.fail("one of: algorithm, key")
            while not c.at_end():
                sub = c.keyword(("algorithm", "key"))
                if sub == "algorithm":
                    m[f"{item}_algorithm"] = c.keyword(algorithms)
                else:
                    form = c.keyword(("ascii-text", "hexadecimal"))
                    if form == "ascii-text":
                        m[f"{item}_key"] = c.value("the key as a quoted string").encode()
                    else:
                        m[f"{item}_key"] = c.value("the key as hexadecimal digits", _hex_key)

    # set interfaces ...
    def _interfaces(self, c: _Cursor) -> None:
        ifd = c.value("an interface name like st0 or ge-0/0/0", _ifd)
        c.keyword(("unit",))
        unit = c.integer("a unit number", 0, MAX_UNIT)
        if ifd == "st0":
            f = self.b.entry(self.b.st0, unit, self.line)
            item = c.keyword(("family", "multipoint"))
            if item == "multipoint":
                f["multipoint"] = True
                return
            family = c.keyword(("inet", "inet6"))
            f["families"] = set(f.get("families", ())) | {family}
        else:
            c.keyword(("family",))
            family = c.keyword(("inet", "inet6"))
        if c.at_end():
            return
        c.keyword(("address",))
        version = 4 if family == "inet" else 6
        addr = c.value(f"an IPv{version} address/prefix-length", _if_prefix_of(version))
        addresses = self.b.interfaces.setdefault(f"{ifd}.{unit}", [])
        if addr not in addresses:
            addresses.append(addr)

    # set routing-options ...
    def _routing_options(self, c: _Cursor) -> None:
        rib = "inet.0"
        if c.keyword(("static", "rib")) == "rib":
            rib = c.keyword(("inet6.0",))
            c.keyword(("static",))
        c.keyword(("route",))
        prefix = c.value("an IP prefix like 10.2.0.0/16", _prefix)
        c.keyword(("next-hop",))
        next_hop = c.value("st0.<unit> or an IP address", _next_hop)
        self.b.routes.append(StaticRoute(prefix, next_hop, rib, line=self.line))

    # set chassis high-availability ... (Multinode High Availability, config/high_availability.py)
    def _chassis(self, c: _Cursor) -> None:
        c.keyword(("high-availability",))
        parse_high_availability(c, self.b.high_availability, self.line)

    # set system license ipsec-offload ...
    def _system(self, c: _Cursor) -> None:
        c.keyword(("license",))
        c.keyword(("ipsec-offload",))
        kind = c.keyword(("expires", "permanent"))
        expires = c.value("a date YYYY-MM-DD", _date) if kind == "expires" else None
        self.b.license = License(expires=expires, line=self.line)


#: What `surrogateescape` made of bytes that are not UTF-8 (see `decode`).
_UNDECODED = re.compile("[\udc80-\udcff]")


def decode(data: bytes) -> str:
    """The text of a configuration file: UTF-8 (a leading byte-order mark is dropped), with
    every byte that is not UTF-8 kept as a lone surrogate, which `parse` reports on its line
    (the other lines still parse, and line numbers stay those of the file)."""
    text = data.decode("utf-8", errors="surrogateescape")
    return text[1:] if text.startswith("\ufeff") else text


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered lines: ends at `\\n` (a `\\r` before it belongs to the end), nowhere else.
    `str.splitlines` would also end lines at \\v, \\f, \\x1c-\\x1e, \\x85, U+2028 and U+2029."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line[:-1] if line.endswith("\r") else line


def parse(text: str) -> tuple[Config, list[ConfigIssue]]:
    """Parse every line; return the configuration built from the good lines and one issue per
    bad line. Callers must not use the configuration when issues is non-empty."""
    p = _Parser()
    for number, line in _lines(text):
        p.line = number
        bad = _UNDECODED.search(line)
        if bad:
            p.issues.append(ConfigIssue(
                number, f"not UTF-8: byte 0x{ord(bad.group()) - 0xDC00:02x} at column "
                f"{bad.start() + 1} (configuration files are UTF-8 text)"))
            continue
        try:
            tokens = tokenize(line)
        except _LexError as exc:
            p.issues.append(ConfigIssue(number, str(exc), exc.token))
            continue
        if not tokens:
            continue
        try:
            p.statement(tokens)
        except _StatementError as exc:
            p.issues.append(ConfigIssue(number, exc.message, exc.token))
    return p.b.freeze(), p.issues
