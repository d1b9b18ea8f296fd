"""Security zones, address books, applications and security policies: the model and grammar.

Junos statements (Junos 25.2R1 syntax, docs/junos-formats.md §2):

    set security zones security-zone <z> interfaces <ifl> [host-inbound-traffic
            system-services|protocols <name> [except]]
    set security zones security-zone <z> host-inbound-traffic system-services|protocols <n> [except]
    set security zones security-zone <z> address-book address <a> <prefix>
                                       | address <a> range-address <ip> to <ip>
                                       | address-set <s> address <a>|address-set <s2>
    set security zones security-zone <z> description "<text>"
    set security address-book <book> address|address-set ... (as above) | attach zone <z>
    set applications application <app> [term <t>] protocol <p> | destination-port <p[-q]>
                                                 | source-port <p[-q]> | icmp-type <n>
                                                 | icmp-code <n> | icmp6-type <n> | icmp6-code <n>
    set applications application-set <s> application <app>|application-set <s2>
    set security policies from-zone <z1> to-zone <z2> policy <p> match
            source-address|destination-address <a>|[ ... ]|any|any-ipv4|any-ipv6
          | application <app>|[ ... ]|any
    set security policies from-zone <z1> to-zone <z2> policy <p> then permit|deny|reject
          | then permit tunnel ipsec-vpn <vpn> [pair-policy <p2>] | then count | then log ...
    set security policies global policy <p> match from-zone|to-zone <z>|[ ... ]|any (+ the above)
    set security policies default-policy permit-all|deny-all

Policies are evaluated as Junos does: the zone pair's policies in the order they were first
configured, then the global policies, then `default-policy` (deny-all unless configured).
A policy-based VPN (`then permit tunnel ipsec-vpn <vpn>`) takes its proxy IDs from the
policy's addresses (`Config.policy_proxy_ids`).

What the model does not carry out is reported, never dropped silently: a match condition
outside the model (`source-identity`, `dynamic-application`, `source-address-excluded`,
`scheduler-name`, ...) makes the policy inactive, listed as such by `show security policies`
and in the load warning; `then log ...`, `description`, `screen` and the like are ignored
hierarchies, listed in the load warning.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = [
    "AddressBook", "AddressEntry", "Application", "ApplicationTerm", "Firewall", "HostInbound",
    "PREDEFINED_APPLICATIONS", "Policy", "SecurityZone", "PROTOCOL_NUMBERS",
]

#: IP protocol names Junos accepts in `applications application <a> protocol <p>`.
PROTOCOL_NUMBERS = {
    "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "rsvp": 46, "gre": 47,
    "esp": 50, "ah": 51, "icmp6": 58, "ospf": 89, "pim": 103, "vrrp": 112, "sctp": 132,
}
#: Port names Junos accepts for `source-port`/`destination-port` (the common ones).
PORT_NAMES = {
    "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "ntp": 123,
    "snmp": 161, "bgp": 179, "https": 443, "syslog": 514, "ldap": 389,
}


@dataclass(frozen=True)
class ApplicationTerm:
    """One term of an application: IP protocol (None: any), port ranges (inclusive) and, for
    ICMP/ICMPv6, the type and code (None: any)."""

    protocol: Optional[int] = None
    source_ports: tuple[int, int] = (0, 65535)
    destination_ports: tuple[int, int] = (0, 65535)
    icmp_type: Optional[int] = None
    icmp_code: Optional[int] = None


@dataclass(frozen=True)
class Application:
    """`applications application <name>` (or a predefined `junos-*` one): its terms; a packet
    matches the application when it matches any term."""

    name: str
    terms: tuple[ApplicationTerm, ...] = ()
    predefined: bool = False
    line: int = field(default=0, compare=False)


def _tcp(port: int) -> tuple[ApplicationTerm, ...]:
    return (ApplicationTerm(6, destination_ports=(port, port)),)


def _udp(port: int) -> tuple[ApplicationTerm, ...]:
    return (ApplicationTerm(17, destination_ports=(port, port)),)


#: The predefined applications the model knows (Junos's `junos-defaults` group has hundreds;
#: these are the ones site-to-site VPN configurations use). Any other `junos-*` name is an
#: error of the configuration that names it.
PREDEFINED_APPLICATIONS: dict[str, Application] = {a.name: a for a in (
    Application("junos-http", _tcp(80), True),
    Application("junos-https", _tcp(443), True),
    Application("junos-ssh", _tcp(22), True),
    Application("junos-telnet", _tcp(23), True),
    Application("junos-ftp", _tcp(21), True),
    Application("junos-smtp", _tcp(25), True),
    Application("junos-bgp", _tcp(179), True),
    Application("junos-ldap", _tcp(389), True),
    Application("junos-dns-udp", _udp(53), True),
    Application("junos-dns-tcp", _tcp(53), True),
    Application("junos-ntp", _udp(123), True),
    Application("junos-snmp-get", _udp(161), True),
    Application("junos-syslog", _udp(514), True),
    Application("junos-ike", _udp(500), True),
    Application("junos-ike-nat", _udp(4500), True),
    Application("junos-ping", (ApplicationTerm(1, icmp_type=8),), True),
    Application("junos-icmp-ping", (ApplicationTerm(1, icmp_type=8),), True),
    Application("junos-pingv6", (ApplicationTerm(58, icmp_type=128),), True),
    Application("junos-icmp-all", (ApplicationTerm(1),), True),
    Application("junos-icmp6-all", (ApplicationTerm(58),), True),
)}


@dataclass(frozen=True)
class AddressEntry:
    """An address-book `address` (prefixes or one range) or `address-set` (member names,
    resolved by `AddressBook.resolve`). `dns_name` entries are kept but match nothing: the
    model resolves no names (reported in the load warning)."""

    name: str
    prefixes: tuple[str, ...] = ()
    ranges: tuple[tuple[str, str], ...] = ()
    members: tuple[str, ...] = ()
    is_set: bool = False
    dns_name: Optional[str] = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class AddressBook:
    """`security address-book <book>` (`global` is attached to every zone) or a zone's own
    legacy `address-book`."""

    name: str
    entries: dict[str, AddressEntry] = field(default_factory=dict)
    attach: tuple[str, ...] = ()

    def resolve(self, name: str, depth: int = 0) -> Optional[list[tuple[str, str]]]:
        """Address ranges (first, last) that `name` stands for; None if the book lacks it.
        Address sets nest at most 8 deep (deeper nesting is a configuration loop)."""
        entry = self.entries.get(name)
        if entry is None or depth > 8:
            return None
        if not entry.is_set:
            out = [(str(n.network_address), str(n.broadcast_address))
                   for n in (ipaddress.ip_network(p) for p in entry.prefixes)]
            return out + list(entry.ranges)
        result: list[tuple[str, str]] = []
        for member in entry.members:
            sub = self.resolve(member, depth + 1)
            if sub is None:
                return None
            result += sub
        return result


@dataclass(frozen=True)
class HostInbound:
    """`host-inbound-traffic system-services|protocols`: the names allowed (`all` allows every
    one) and those excluded with `except`."""

    services: frozenset[str] = frozenset()
    services_except: frozenset[str] = frozenset()
    protocols: frozenset[str] = frozenset()
    protocols_except: frozenset[str] = frozenset()

    @property
    def configured(self) -> bool:
        return bool(self.services or self.services_except or self.protocols
                    or self.protocols_except)

    def allows(self, service: str) -> bool:
        """True when system-service `service` (e.g. "ike", "ping", "ssh") may reach the
        device."""
        if service in self.services_except:
            return False
        return service in self.services or "all" in self.services

    def describe(self) -> str:
        parts = [s for s in sorted(self.services)]
        parts += [f"{s}(except)" for s in sorted(self.services_except)]
        parts += [f"protocols:{p}" for p in sorted(self.protocols)]
        return " ".join(parts) or "none"


@dataclass(frozen=True)
class SecurityZone:
    """`security zones security-zone <name>`: its interfaces (each with its own
    host-inbound-traffic, which replaces the zone's when configured, as on Junos), the
    zone-level host-inbound-traffic and the zone's own address book."""

    name: str
    interfaces: dict[str, HostInbound] = field(default_factory=dict)
    host_inbound: HostInbound = HostInbound()
    address_book: AddressBook = AddressBook("")
    description: Optional[str] = None
    line: int = field(default=0, compare=False)

    def host_inbound_of(self, interface: str) -> HostInbound:
        own = self.interfaces.get(interface)
        return own if own is not None and own.configured else self.host_inbound


@dataclass(frozen=True)
class Policy:
    """One security policy. `from_zones`/`to_zones` are one zone each for a zone-pair policy
    and any number (empty: any) for a global one. `action` is permit, deny or reject;
    `tunnel` the IPsec VPN of a policy-based VPN; `unsupported` the match conditions the model
    does not carry out (the policy is then inactive)."""

    name: str
    from_zones: tuple[str, ...] = ()
    to_zones: tuple[str, ...] = ()
    global_policy: bool = False
    source_addresses: tuple[str, ...] = ()
    destination_addresses: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    action: Optional[str] = None
    tunnel: Optional[str] = None
    pair_policy: Optional[str] = None
    count: bool = False
    unsupported: tuple[str, ...] = ()
    description: Optional[str] = None
    line: int = field(default=0, compare=False)

    @property
    def active(self) -> bool:
        return not self.unsupported and self.action is not None

    @property
    def action_text(self) -> str:
        if self.action == "permit" and self.tunnel:
            return "permit, tunnel"
        return self.action or "none"


@dataclass(frozen=True)
class Firewall:
    """Everything of the firewall part of a configuration (`Config.firewall`)."""

    zones: dict[str, SecurityZone] = field(default_factory=dict)
    address_books: dict[str, AddressBook] = field(default_factory=dict)
    applications: dict[str, Application] = field(default_factory=dict)
    application_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    policies: tuple[Policy, ...] = ()
    default_policy: str = "deny-all"
    default_policy_line: int = 0

    @property
    def configured(self) -> bool:
        """Zones or policies are configured: traffic is then subject to policy (Junos's
        default deny). A configuration with neither (the model's configurations that predate
        zones) forwards by route alone."""
        return bool(self.zones or self.policies)

    def zone_of(self, interface: Optional[str]) -> Optional[str]:
        if interface is None:
            return None
        for zone in self.zones.values():
            if interface in zone.interfaces:
                return zone.name
        return None

    def books_of(self, zone: Optional[str]) -> list[AddressBook]:
        """The address books a policy of `zone` sees: the zone's own, those attached to it,
        and `global`."""
        books = []
        if zone is not None and zone in self.zones:
            books.append(self.zones[zone].address_book)
        for book in self.address_books.values():
            if book.name == "global" or (zone is not None and zone in book.attach):
                books.append(book)
        return books

    def resolve_address(self, name: str, zone: Optional[str]) -> Optional[list[tuple[str, str]]]:
        """Ranges of address `name` as seen from `zone` (`any`, `any-ipv4`, `any-ipv6`
        included); None when no book has it."""
        if name == "any":
            return [("0.0.0.0", "255.255.255.255"), ("::", _ALL6)]
        if name == "any-ipv4":
            return [("0.0.0.0", "255.255.255.255")]
        if name == "any-ipv6":
            return [("::", _ALL6)]
        for book in self.books_of(zone):
            found = book.resolve(name)
            if found is not None:
                return found
        return None

    def resolve_application(self, name: str, depth: int = 0) -> Optional[list[ApplicationTerm]]:
        """Terms of an application or application set (`any`: every packet)."""
        if name == "any":
            return [ApplicationTerm()]
        if name in self.applications:
            return list(self.applications[name].terms)
        if name in PREDEFINED_APPLICATIONS:
            return list(PREDEFINED_APPLICATIONS[name].terms)
        if name in self.application_sets and depth <= 8:
            out: list[ApplicationTerm] = []
            for member in self.application_sets[name]:
                sub = self.resolve_application(member, depth + 1)
                if sub is None:
                    return None
                out += sub
            return out
        return None


_ALL6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"


# -- grammar -----------------------------------------------------------------------------------
# The functions below take the parser's `_Cursor` and `_Parser` (junos.py) and record into a
# `FirewallBuilder`; they raise through the cursor exactly as junos.py's own grammar does.

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-:/]{0,62}$")
_NAME_RULE = "1 to 63 of A-Z a-z 0-9 _ . - : /, not starting with _ . - : /"
_IFL_RE = re.compile(r"^[a-z][a-z0-9\-]*(\d+(/\d+)*)?(\.\d+)?$")


def _name(text: str) -> str:
    if not _NAME_RE.match(text):
        raise ValueError
    return text


def _ifl(text: str) -> str:
    if not _IFL_RE.match(text):
        raise ValueError
    return text if "." in text else text + ".0"


def _prefix(text: str) -> str:
    """An address-book prefix: `10.0.0.0/8`, or a host address (Junos takes it as /32, /128)."""
    if "/" not in text:
        return str(ipaddress.ip_network(text))
    return str(ipaddress.ip_network(text, strict=False))


def _ip(text: str) -> str:
    return str(ipaddress.ip_address(text))


def _port_range(text: str) -> tuple[int, int]:
    def one(t: str) -> int:
        if t in PORT_NAMES:
            return PORT_NAMES[t]
        if not t.isdigit() or int(t) > 65535:
            raise ValueError
        return int(t)
    lo, sep, hi = text.partition("-")
    first = one(lo)
    last = one(hi) if sep else first
    if last < first:
        raise ValueError
    return (first, last)


def _protocol(text: str) -> int:
    if text in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[text]
    if text.isdigit() and int(text) <= 255:
        return int(text)
    raise ValueError


class FirewallBuilder:
    """Mutable state while parsing; `freeze()` makes the `Firewall`."""

    def __init__(self) -> None:
        self.zones: dict[str, dict[str, Any]] = {}
        self.books: dict[str, dict[str, Any]] = {}
        self.apps: dict[str, dict[str, Any]] = {}
        self.app_sets: dict[str, list[str]] = {}
        self.policies: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.default_policy = "deny-all"
        self.default_policy_line = 0

    # zones
    def zone(self, name: str, line: int) -> dict[str, Any]:
        return self.zones.setdefault(name, {"line": line, "interfaces": {}, "hit": {},
                                            "book": self.book_dict(line)})

    @staticmethod
    def book_dict(line: int) -> dict[str, Any]:
        return {"line": line, "entries": {}, "attach": []}

    def freeze(self) -> Firewall:
        zones = {}
        for name, z in self.zones.items():
            zones[name] = SecurityZone(
                name=name,
                interfaces={i: _host(h) for i, h in z["interfaces"].items()},
                host_inbound=_host(z["hit"]),
                address_book=_book(name, z["book"]),
                description=z.get("description"), line=z["line"])
        books = {n: _book(n, b) for n, b in self.books.items()}
        apps = {}
        for name, a in self.apps.items():
            terms = tuple(_term(t) for t in a["terms"].values() if t)
            apps[name] = Application(name, terms, line=a["line"])
        policies = []
        for (fz, tz, name), p in sorted(self.policies.items(), key=lambda kv: kv[1]["line"]):
            glob = fz == "" and tz == ""
            policies.append(Policy(
                name=name,
                from_zones=tuple(p.get("from_zones", ())) if glob else (fz,),
                to_zones=tuple(p.get("to_zones", ())) if glob else (tz,),
                global_policy=glob,
                source_addresses=tuple(p.get("source", ())),
                destination_addresses=tuple(p.get("destination", ())),
                applications=tuple(p.get("application", ())),
                action=p.get("action"), tunnel=p.get("tunnel"),
                pair_policy=p.get("pair_policy"), count=p.get("count", False),
                unsupported=tuple(p.get("unsupported", ())),
                description=p.get("description"), line=p["line"]))
        return Firewall(zones=zones, address_books=books, applications=apps,
                        application_sets={k: tuple(v) for k, v in self.app_sets.items()},
                        policies=tuple(policies), default_policy=self.default_policy,
                        default_policy_line=self.default_policy_line)


def _host(h: dict[str, set[str]]) -> HostInbound:
    return HostInbound(frozenset(h.get("services", ())), frozenset(h.get("services_except", ())),
                       frozenset(h.get("protocols", ())),
                       frozenset(h.get("protocols_except", ())))


def _book(name: str, b: dict[str, Any]) -> AddressBook:
    entries = {}
    for n, e in b["entries"].items():
        entries[n] = AddressEntry(n, tuple(e.get("prefixes", ())), tuple(e.get("ranges", ())),
                                  tuple(e.get("members", ())), e.get("is_set", False),
                                  e.get("dns_name"), e["line"])
    return AddressBook(name, entries, tuple(b["attach"]))


def _term(t: dict[str, Any]) -> ApplicationTerm:
    return ApplicationTerm(t.get("protocol"), t.get("source_ports", (0, 65535)),
                           t.get("destination_ports", (0, 65535)), t.get("icmp_type"),
                           t.get("icmp_code"))


def parse_zones(p: Any, c: Any) -> None:
    """`set security zones ...` (cursor after `zones`)."""
    fw: FirewallBuilder = p.b.firewall
    c.section(("security-zone",))
    zname = c.value("a zone name", _name)
    z = fw.zone(zname, p.line)
    item = c.section(("interfaces", "host-inbound-traffic", "address-book", "description"))
    if item == "interfaces":
        ifl = c.value("an interface name like ge-0/0/0.0", _ifl)
        hit = z["interfaces"].setdefault(ifl, {})
        if c.at_end():
            return
        c.section(("host-inbound-traffic",))
        _host_inbound(c, hit)
    elif item == "host-inbound-traffic":
        _host_inbound(c, z["hit"])
    elif item == "address-book":
        _address_book_entry(p, c, z["book"], zone_book=True)
    else:
        z["description"] = c.value("a description")


def _host_inbound(c: Any, hit: dict[str, set[str]]) -> None:
    kind = c.section(("system-services", "protocols"))
    name = c.value("a service or protocol name (or all)", _name)
    excepted = False
    if not c.at_end():
        c.keyword(("except",))
        excepted = True
    key = ("services" if kind == "system-services" else "protocols") + \
        ("_except" if excepted else "")
    hit.setdefault(key, set()).add(name)


def parse_address_book(p: Any, c: Any) -> None:
    """`set security address-book <book> ...` (cursor after `address-book`)."""
    fw: FirewallBuilder = p.b.firewall
    book = c.value("an address book name", _name)
    b = fw.books.setdefault(book, FirewallBuilder.book_dict(p.line))
    _address_book_entry(p, c, b, zone_book=False)


def _address_book_entry(p: Any, c: Any, b: dict[str, Any], zone_book: bool) -> None:
    choices = ("address", "address-set") if zone_book else \
        ("address", "address-set", "attach", "description")
    item = c.section(choices)
    if item == "description":
        c.value("a description")
        return
    if item == "attach":
        c.keyword(("zone",))
        zone = c.value("a zone name", _name)
        if zone not in b["attach"]:
            b["attach"].append(zone)
        return
    name = c.value("an address name", _name)
    e = b["entries"].setdefault(name, {"line": p.line, "is_set": item == "address-set"})
    if item == "address-set":
        sub = c.section(("address", "address-set", "description"))
        if sub == "description":
            c.value("a description")
            return
        member = c.value("an address name", _name)
        members = e.setdefault("members", [])
        if member not in members:
            members.append(member)
        return
    tok = c.peek()
    if tok is not None and not tok.quoted and tok.text in ("range-address", "dns-name",
                                                             "description",
                                                             "wildcard-address"):
        what = c.section(("range-address", "dns-name", "description"))
        if what == "range-address":
            lo = c.value("an IP address", _ip)
            c.keyword(("to",))
            hi = c.value("an IP address", _ip)
            if ipaddress.ip_address(lo).version != ipaddress.ip_address(hi).version or \
                    ipaddress.ip_address(hi) < ipaddress.ip_address(lo):
                c.pos -= 1
                c.fail("an IP address of the same family, not below the first")
            e.setdefault("ranges", []).append((lo, hi))
        elif what == "dns-name":
            e["dns_name"] = c.value("a DNS name")
            p.note_ignored(c, "security address-book * address * dns-name "
                           "(names are not resolved: the address matches nothing)")
        else:
            c.value("a description")
        return
    prefix = c.value("an IP prefix like 10.0.0.0/24 or an address", _prefix)
    prefixes = e.setdefault("prefixes", [])
    if prefix not in prefixes:
        prefixes.append(prefix)


def parse_applications(p: Any, c: Any) -> None:
    """`set applications ...` (cursor after `applications`)."""
    fw: FirewallBuilder = p.b.firewall
    kind = c.section(("application", "application-set"))
    name = c.value("an application name", _name)
    if name.startswith("junos-"):
        c.pos -= 1
        c.fail("an application name not starting with junos- (those are predefined)")
    if kind == "application-set":
        sub = c.section(("application", "application-set", "description"))
        if sub == "description":
            c.value("a description")
            return
        member = c.value("an application name", _name)
        members = fw.app_sets.setdefault(name, [])
        if member not in members:
            members.append(member)
        return
    a = fw.apps.setdefault(name, {"line": p.line, "terms": {}})
    term_name = ""
    tok = c.peek()
    if tok is not None and not tok.quoted and tok.text == "term":
        c.keyword(("term",))
        term_name = c.value("a term name", _name)
    t = a["terms"].setdefault(term_name, {})
    item = c.section(("protocol", "destination-port", "source-port", "icmp-type", "icmp-code",
                      "icmp6-type", "icmp6-code", "description"))
    if item == "protocol":
        t["protocol"] = c.value("a protocol (tcp, udp, icmp, icmp6, ... or 0..255)", _protocol)
    elif item == "destination-port":
        t["destination_ports"] = c.value("a port or range like 8000-8080", _port_range)
    elif item == "source-port":
        t["source_ports"] = c.value("a port or range like 1024-65535", _port_range)
    elif item in ("icmp-type", "icmp6-type"):
        t["icmp_type"] = c.integer("an ICMP type", 0, 255)
    elif item in ("icmp-code", "icmp6-code"):
        t["icmp_code"] = c.integer("an ICMP code", 0, 255)
    else:
        c.value("a description")


_UNSUPPORTED_MATCH = ("source-identity", "dynamic-application", "source-address-excluded",
                      "destination-address-excluded", "source-end-user-profile", "url-category",
                      "dynamic-application-group", "from-zone-group", "to-zone-group")
_UNSUPPORTED_POLICY = ("scheduler-name",)


def parse_policies(p: Any, c: Any) -> None:
    """`set security policies ...` (cursor after `policies`)."""
    fw: FirewallBuilder = p.b.firewall
    item = c.section(("from-zone", "global", "default-policy"))
    if item == "default-policy":
        fw.default_policy = c.keyword(("permit-all", "deny-all"))
        fw.default_policy_line = p.line
        return
    if item == "from-zone":
        fz = c.value("a zone name", _name)
        c.keyword(("to-zone",))
        tz = c.value("a zone name", _name)
    else:
        fz = tz = ""
    c.keyword(("policy",))
    name = c.value("a policy name", _name)
    pol = fw.policies.setdefault((fz, tz, name), {"line": p.line})
    stmt = c.section(("match", "then", "description") + _UNSUPPORTED_POLICY)
    if stmt == "description":
        pol["description"] = c.value("a description")
    elif stmt in _UNSUPPORTED_POLICY:
        pol.setdefault("unsupported", []).append(stmt)
        p.note_ignored(c, f"security policies ... policy * {stmt} (the policy is inactive)")
        while not c.at_end():
            c.pos += 1
    elif stmt == "match":
        choices = ["source-address", "destination-address", "application",
                   *_UNSUPPORTED_MATCH]
        if not fz:
            choices += ["from-zone", "to-zone"]
        cond = c.keyword(tuple(choices))
        if cond in _UNSUPPORTED_MATCH:
            pol.setdefault("unsupported", []).append(f"match {cond}")
            p.note_ignored(c, f"security policies ... match {cond} (the policy is inactive)")
            while not c.at_end():
                c.pos += 1
            return
        key = {"source-address": "source", "destination-address": "destination",
               "application": "application", "from-zone": "from_zones",
               "to-zone": "to_zones"}[cond]
        values = c.values("a name (or any)", _name)
        current = pol.setdefault(key, [])
        for v in values:
            if v not in current:
                current.append(v)
    else:
        action = c.section(("permit", "deny", "reject", "count", "log"))
        if action in ("count",):
            pol["count"] = True
            return
        if action == "log":
            p.note_ignored(c, "security policies ... then log")
            while not c.at_end():
                c.pos += 1
            return
        pol["action"] = action
        if action != "permit" or c.at_end():
            return
        c.section(("tunnel",))
        while not c.at_end():         # one line, or one line per leaf as `display set` prints
            if c.keyword(("ipsec-vpn", "pair-policy")) == "ipsec-vpn":
                pol["tunnel"] = c.value("an IPsec VPN name", _name)
            else:
                pol["pair_policy"] = c.value("a policy name", _name)


#: Most proxy IDs one policy-based VPN takes from its policy (source x destination pairs).
MAX_PROXY_IDS = 64


def _prefixes(ranges: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for lo, hi in ranges:
        out += [str(n) for n in ipaddress.summarize_address_range(ipaddress.ip_address(lo),
                                                                   ipaddress.ip_address(hi))]
    return out


def policy_proxy_ids(fw: Firewall, policy: Policy) -> list[tuple[str, str]]:
    """The proxy IDs (local prefix, remote prefix) a policy-based VPN negotiates for
    `policy` (RFC 7296 §2.9 traffic selectors): every pair of a source prefix (local, seen
    from the policy's from-zone) and a destination prefix of the same family (remote, seen
    from its to-zone), at most `MAX_PROXY_IDS`. `any` is 0.0.0.0/0 (and ::/0)."""
    fz = policy.from_zones[0] if policy.from_zones else None
    tz = policy.to_zones[0] if policy.to_zones else None
    local: list[str] = []
    remote: list[str] = []
    for name in policy.source_addresses:
        local += _prefixes(fw.resolve_address(name, fz) or [])
    for name in policy.destination_addresses:
        remote += _prefixes(fw.resolve_address(name, tz) or [])
    pairs = []
    for lp in dict.fromkeys(local):
        for rp in dict.fromkeys(remote):
            if ipaddress.ip_network(lp).version == ipaddress.ip_network(rp).version:
                pairs.append((lp, rp))
    return pairs[:MAX_PROXY_IDS]


def validate_firewall(config: Any) -> list[Any]:
    """Commit checks of zones and policies (Junos refuses these at commit): unknown zones,
    addresses, applications, VPNs and pair policies, an interface in two zones, a policy
    without `match` or `then`, a policy-based tunnel to a route-based VPN."""
    from .errors import ConfigIssue
    fw: Firewall = config.firewall
    issues: list[ConfigIssue] = []
    seen: dict[str, str] = {}
    for zone in fw.zones.values():
        for ifl in zone.interfaces:
            if ifl in seen:
                issues.append(ConfigIssue(zone.line, f"security-zone {zone.name}: interface "
                                          f"{ifl} is already in zone {seen[ifl]}", ifl))
            seen[ifl] = zone.name
    for book in fw.address_books.values():
        for zone in book.attach:
            if zone not in fw.zones:
                issues.append(ConfigIssue(0, f"address-book {book.name}: attach zone {zone}: "
                                          "no such security zone", zone))
    names = {(p.from_zones, p.to_zones, p.name) for p in fw.policies}
    for p in fw.policies:
        where = (f"policy {p.name} (global)" if p.global_policy else
                 f"policy {p.name} from-zone {p.from_zones[0]} to-zone {p.to_zones[0]}")
        for z in p.from_zones + p.to_zones:
            if z not in fw.zones and z not in ("any", "junos-host"):
                issues.append(ConfigIssue(p.line, f"{where}: security zone '{z}' is not "
                                          f"defined ({', '.join(fw.zones) or 'none'})", z))
        if p.unsupported:
            continue
        if p.action is None:
            issues.append(ConfigIssue(p.line, f"{where}: missing 'then permit|deny|reject'"))
        for side, addrs, zones in (("source-address", p.source_addresses, p.from_zones),
                                   ("destination-address", p.destination_addresses,
                                    p.to_zones)):
            if not addrs:
                issues.append(ConfigIssue(p.line, f"{where}: missing 'match {side}'"))
            for a in addrs:
                zone = zones[0] if len(zones) == 1 else None
                if fw.resolve_address(a, zone) is None:
                    issues.append(ConfigIssue(
                        p.line, f"{where}: {side} '{a}' is not in an address book the zone "
                        "sees (its own, one attached to it, or global)", a))
        if not p.applications:
            issues.append(ConfigIssue(p.line, f"{where}: missing 'match application'"))
        for app in p.applications:
            if fw.resolve_application(app) is None:
                issues.append(ConfigIssue(
                    p.line, f"{where}: application '{app}' is not defined (applications "
                    "application/application-set, or a predefined junos-* one the model "
                    f"knows: {', '.join(sorted(PREDEFINED_APPLICATIONS))})", app))
        if p.tunnel is not None:
            vpn = config.ipsec_vpns.get(p.tunnel)
            if vpn is None:
                issues.append(ConfigIssue(p.line, f"{where}: tunnel ipsec-vpn '{p.tunnel}' is "
                                          "not defined", p.tunnel))
            elif vpn.bind_interface is not None:
                issues.append(ConfigIssue(
                    p.line, f"{where}: ipsec-vpn {p.tunnel} is route-based (bind-interface "
                    f"{vpn.bind_interface}); a policy tunnels only to a policy-based VPN",
                    p.tunnel))
            elif vpn.tunnel_policy not in (None, p.name) and p.pair_policy is None:
                pass    # several policies may share one VPN; the first gives the proxy IDs
        if p.pair_policy is not None and not p.global_policy:
            back = ((p.to_zones[0],), (p.from_zones[0],), p.pair_policy)
            if back not in names:
                issues.append(ConfigIssue(
                    p.line, f"{where}: pair-policy '{p.pair_policy}' is not a policy from-zone "
                    f"{p.to_zones[0]} to-zone {p.from_zones[0]}", p.pair_policy))
    return issues
