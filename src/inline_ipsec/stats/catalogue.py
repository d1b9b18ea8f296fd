"""The counter catalogue: every counter of the data plane and every statistics line of the show
commands, listed once. Everything else is derived from it:

  - the PFE's C structs `sa_counters_t` and `engine_counters_t`: setup.py generates
    src/_pfe_core/counters.pxd from `COUNTERS` at build time (`c_declarations`), and the
    kernels export the compiled layout so a test proves C and catalogue agree;
  - the Python counter classes (`counter_fields`): `SaCounters` and `EngineCounters`
    (inline_ipsec.engine), the CPU engine's per-SA fields, and the gateway's
    `GatewayCounters`, `PathCounters` and `TunnelFlow` (dataplane/counters.py);
  - the statistics of the show commands (docs/junos-formats.md §4.5, §4.6): one field per line
    (`SHOW`), which counters add to which line (`Counter.feeds`) and the layout the renderers
    print (`Row`).

To add a counter, add one `Counter` here: its scope places it (for "sa" and "engine" also in
the C struct), its feeds put it into show lines, `drop=True` with a `status` ties it to the
per-packet `Status` it counts. A new C-side scope (a forwarding pipeline's route, policy or
MTU counters) is one more entry in `C_STRUCTS`. tests/stats/test_catalogue.py checks that
every counter exists everywhere it should and moves when its event happens.

Only the standard library is used here: setup.py loads this file on its own, without the
package (which needs numpy and the built kernels).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

__all__ = ["Counter", "Feed", "Row", "ShowCommand", "ShowLine", "COUNTERS", "SCOPES",
           "C_STRUCTS", "SHOW", "counters", "counter_names", "drop_names", "counter_fields",
           "statistics_fields", "statistics", "c_declarations"]

#: Where a counter lives: per SA (both engines; C struct), per engine (drops that name no SA;
#: C struct), per gateway, per engine kind at a gateway ("path"), per tunnel at a gateway.
SCOPES = ("sa", "engine", "gateway", "path", "tunnel")
#: The C struct of each scope the PFE's kernels count in.
C_STRUCTS = {"sa": "sa_counters_t", "engine": "engine_counters_t"}
DIRECTIONS = ("inbound", "outbound", "both")
UNITS = ("packets", "bytes", "calls", "seconds", "sessions")


@dataclass(frozen=True)
class Feed:
    """One statistics line a counter adds to (`command.line`, e.g. "ipsec.replay_errors"),
    only for sources whose direction, protocol or engine kind match when given."""

    line: str
    direction: Optional[str] = None
    protocol: Optional[str] = None
    engine: Optional[str] = None

    def applies(self, qualifiers: Mapping[str, str]) -> bool:
        return all(want is None or qualifiers.get(key) == want
                   for key, want in (("direction", self.direction),
                                     ("protocol", self.protocol), ("engine", self.engine)))


@dataclass(frozen=True)
class Counter:
    """One counter. `drop`: it counts packets dropped for one reason, reported per packet as
    `Status.<status>`. `gauge`: a level read when shown (not stored in a counter class).
    A counter that feeds no show line says in `unshown` why and where it can be read."""

    name: str
    scope: str
    direction: str
    unit: str
    description: str
    feeds: tuple[Feed, ...] = ()
    drop: bool = False
    status: Optional[str] = None
    gauge: bool = False
    unshown: str = ""


def _c(name: str, scope: str, direction: str, unit: str, description: str,
       *feeds: Feed, drop: bool = False, status: Optional[str] = None,
       gauge: bool = False, unshown: str = "") -> Counter:
    return Counter(name, scope, direction, unit, description, tuple(feeds), drop, status, gauge,
                   unshown)


def _f(line: str, **when: str) -> Feed:
    return Feed(line, **when)


_OUT, _IN, _BOTH = "outbound", "inbound", "both"
_PER_TUNNEL = "Gateway.tunnel_flow(name): the tunnel's own packet accounting"
_BY_REASON = "shown by reason through the tunnel's SA counters, which feed the same command"
_ESP, _AH = {"protocol": "esp"}, {"protocol": "ah"}

COUNTERS: tuple[Counter, ...] = (
    # -- per SA, both engines (C: sa_counters_t, in this order) -------------------------------
    _c("packets", "sa", _BOTH, "packets",
       "packets encrypted (outbound) or decrypted and accepted (inbound)",
       _f("ipsec.esp_encrypted_packets", direction=_OUT, **_ESP),
       _f("ipsec.esp_decrypted_packets", direction=_IN, **_ESP),
       _f("ipsec.ah_output_packets", direction=_OUT, **_AH),
       _f("ipsec.ah_input_packets", direction=_IN, **_AH)),
    _c("bytes", "sa", _BOTH, "bytes",
       "inner (protected) bytes of the packets counted in `packets`",
       _f("ipsec.esp_encrypted_bytes", direction=_OUT, **_ESP),
       _f("ipsec.esp_decrypted_bytes", direction=_IN, **_ESP),
       _f("ipsec.ah_output_bytes", direction=_OUT, **_AH),
       _f("ipsec.ah_input_bytes", direction=_IN, **_AH)),
    _c("auth_failed", "sa", _IN, "packets", "the ICV did not verify (RFC 4303 §3.4.4)",
       _f("ipsec.esp_authentication_failures", **_ESP),
       _f("ipsec.ah_authentication_failures", **_AH), drop=True, status="AUTH_FAILED"),
    _c("replay_duplicate", "sa", _IN, "packets",
       "sequence number already received (RFC 4303 §3.4.3)",
       _f("ipsec.replay_errors"), drop=True, status="REPLAY_DUPLICATE"),
    _c("replay_below_window", "sa", _IN, "packets",
       "sequence number left of the anti-replay window (RFC 4303 §3.4.3)",
       _f("ipsec.replay_errors"), drop=True, status="REPLAY_BELOW_WINDOW"),
    _c("malformed", "sa", _BOTH, "packets",
       "truncated packet, or an inner header whose lengths lie",
       _f("ipsec.bad_headers"), drop=True, status="MALFORMED"),
    _c("bad_trailer", "sa", _IN, "packets",
       "bad padding, pad length or next header (RFC 4303 §2.4-2.6)",
       _f("ipsec.bad_trailers"), drop=True, status="BAD_TRAILER"),
    _c("seq_overflow", "sa", _OUT, "packets",
       "sequence number space exhausted; the SA must be rekeyed (RFC 4303 §3.3.3)",
       _f("ipsec.discarded"), drop=True, status="SEQ_OVERFLOW"),
    _c("dummy", "sa", _IN, "packets", "dummy packet, next header 59 (RFC 4303 §2.6)",
       _f("ipsec.discarded"), drop=True, status="DUMMY"),
    _c("no_room", "sa", _OUT, "packets",
       "the result does not fit the slot or an IP length field",
       _f("ipsec.exceeds_tunnel_mtu"), drop=True, status="NO_ROOM"),
    _c("expired", "sa", _BOTH, "packets",
       "the SA reached its hard lifetime (RFC 4301 §4.4.2.1; CPU engine)",
       _f("ipsec.discarded"), drop=True, status="EXPIRED"),
    _c("ecn_drop", "sa", _IN, "packets",
       "outer CE over a Not-ECT inner packet (RFC 6040 §4.2)",
       _f("ipsec.discarded"), drop=True, status="ECN_DROP"),
    _c("crypto_error", "sa", _BOTH, "packets",
       "the crypto library failed for a reason other than the ICV",
       _f("ipsec.esp_decryption_failures", direction=_IN),
       _f("ipsec.discarded", direction=_OUT), drop=True, status="CRYPTO_ERROR"),
    # -- per engine: drops that name no SA (C: engine_counters_t, in this order) --------------
    _c("unknown_spi", "engine", _IN, "packets",
       "no inbound SA with the packet's SPI (RFC 4303 §3.4.2)",
       _f("ipsec.invalid_spi"), drop=True, status="UNKNOWN_SPI"),
    _c("malformed", "engine", _IN, "packets",
       "bad outer header, outer fragment or an ESP header too short to name an SA",
       _f("ipsec.bad_headers"), drop=True, status="MALFORMED"),
    _c("not_esp", "engine", _IN, "packets",
       "NAT-T datagram behind the non-ESP marker (RFC 3948 §2.2)",
       drop=True, status="NOT_ESP", unshown="IKE messages are handed to IKE, not errors"),
    _c("keepalive", "engine", _IN, "packets", "NAT-T keepalive (RFC 3948 §2.3)",
       drop=True, status="KEEPALIVE", unshown="keepalives are expected, not errors"),
    _c("no_sa", "engine", _OUT, "packets",
       "encrypt with a handle that names no outbound SA (never issued, or removed)",
       _f("ipsec.discarded"), drop=True, status="NO_SA"),
    # -- per gateway ---------------------------------------------------------------------------
    _c("inner_received", "gateway", _OUT, "packets",
       "inner packets handed to the gateway for its tunnels", _f("flow.packets_received")),
    _c("outer_received", "gateway", _IN, "packets",
       "outer packets from the peers (ESP, AH, IKE, keepalives, fragments)",
       _f("flow.packets_received")),
    _c("transmitted_outer", "gateway", _OUT, "packets", "ESP and AH packets sent to peers",
       _f("flow.packets_transmitted")),
    _c("delivered_inner", "gateway", _IN, "packets",
       "inner packets decrypted and delivered behind the gateway",
       _f("flow.packets_transmitted")),
    _c("icmp_sent", "gateway", _OUT, "packets",
       "ICMP errors sent back for packets too big for the tunnel (RFC 792, RFC 4443)",
       _f("flow.packets_transmitted")),
    _c("no_route", "gateway", _OUT, "packets",
       "inner packets with no tunnel route, or a route to a tunnel that is down",
       _f("flow.packets_dropped"), drop=True),
    _c("malformed_inner", "gateway", _OUT, "packets", "inner packets that are not IP",
       _f("flow.packets_dropped"), drop=True),
    _c("malformed_outer", "gateway", _IN, "packets",
       "bad outer header, unknown protocol, an ESP/AH header too short",
       _f("flow.packets_dropped"), _f("ipsec.bad_headers"), drop=True),
    _c("invalid_spi", "gateway", _IN, "packets", "no SA for the SPI (RFC 4303 §3.4.2)",
       _f("flow.packets_dropped"), _f("ipsec.invalid_spi"), drop=True),
    _c("ts_check_fail", "gateway", _IN, "packets",
       "decrypted, but outside the SA's traffic selectors (RFC 4301 §5.2)",
       _f("flow.packets_dropped"), _f("ipsec.ts_check_fail"), drop=True),
    _c("exceeds_tunnel_mtu", "gateway", _OUT, "packets",
       "too big for the tunnel with DF set or IPv6; an ICMP error went back (RFC 4301 §8)",
       _f("flow.packets_dropped"), _f("ipsec.exceeds_tunnel_mtu"), drop=True),
    _c("pre_fragments", "gateway", _OUT, "packets",
       "fragments made before encryption (RFC 791, RFC 4301 §8)",
       _f("flow.pre_fragments_generated")),
    _c("fragments_received", "gateway", _IN, "packets",
       "fragments received: outer ones reassembled, inner ones decapsulated",
       _f("flow.fragment_packets")),
    _c("ike_packets", "gateway", _IN, "packets",
       "IKE messages on the data path (UDP 500, or 4500 behind the non-ESP marker)",
       unshown="in Packets received with every outer packet; IKE shows its own traffic"),
    _c("nat_keepalives", "gateway", _IN, "packets", "NAT-T keepalives (RFC 3948 §2.3)",
       unshown="in Packets received with every outer packet"),
    _c("current_sessions", "gateway", _BOTH, "sessions",
       "flows (address pair, protocol) seen through the tunnels", _f("flow.current_sessions"),
       gauge=True),
    # -- per engine kind at a gateway ("pfe", "cpu") -----------------------------------------
    _c("encrypted", "path", _OUT, "packets", "packets this engine kind encrypted",
       _f("flow.services_offload_packets", engine="pfe")),
    _c("decrypted", "path", _IN, "packets", "packets this engine kind decrypted",
       _f("flow.services_offload_packets", engine="pfe")),
    _c("encrypt_drops", "path", _OUT, "packets",
       "packets this engine kind refused to encrypt (by Status in the SA counters)",
       _f("flow.packets_dropped"), drop=True),
    _c("decrypt_drops", "path", _IN, "packets",
       "packets this engine kind dropped on decrypt (by Status in the SA counters)",
       _f("flow.packets_dropped"), drop=True),
    _c("burst_calls", "path", _BOTH, "calls", "burst calls into this engine kind",
       unshown="a measurement: the demo's throughput figures"),
    _c("seconds", "path", _BOTH, "seconds", "time spent inside those burst calls",
       unshown="a measurement: the demo's throughput figures"),
    # -- per tunnel at a gateway (`show ... statistics vpn-name NAME`) ----------------------
    _c("out_packets", "tunnel", _OUT, "packets", "inner packets routed into the tunnel",
       unshown=_PER_TUNNEL),
    _c("out_fragments", "tunnel", _OUT, "packets",
       "extra fragments made of them before encryption (RFC 791)", unshown=_PER_TUNNEL),
    _c("out_mtu_drops", "tunnel", _OUT, "packets",
       "dropped as too big with DF set or IPv6; an ICMP error went back",
       _f("ipsec.exceeds_tunnel_mtu"), drop=True),
    _c("out_engine_drops", "tunnel", _OUT, "packets", "refused by the engine", drop=True,
       unshown=_BY_REASON),
    _c("out_encrypted", "tunnel", _OUT, "packets", "left as ESP or AH packets",
       unshown=_PER_TUNNEL),
    _c("in_packets", "tunnel", _IN, "packets", "ESP/AH packets naming one of its SPIs",
       unshown=_PER_TUNNEL),
    _c("in_delivered", "tunnel", _IN, "packets", "decrypted and within its selectors",
       unshown=_PER_TUNNEL),
    _c("in_ts_fail", "tunnel", _IN, "packets",
       "decrypted, but outside the selectors (RFC 4301 §5.2)", _f("ipsec.ts_check_fail"),
       drop=True),
    _c("in_engine_drops", "tunnel", _IN, "packets", "dropped by the engine", drop=True,
       unshown=_BY_REASON),
)


@dataclass(frozen=True)
class ShowLine:
    """One value of a statistics command: `key` is its field in the statistics class,
    `label` what the device prints. A line no counter feeds says why in `unfed`."""

    key: str
    label: str
    unfed: str = ""


@dataclass(frozen=True)
class Row:
    """One printed row: a section heading, or the lines in `keys`. Style "column": one line,
    its value right-aligned (`Encrypted bytes:     564503159752`); "inline": `Label: value`,
    several separated by ", ". `srx_only`: the MX does not print the row."""

    keys: tuple[str, ...] = ()
    heading: str = ""
    style: str = "inline"
    srx_only: bool = False


@dataclass(frozen=True)
class ShowCommand:
    """A statistics command: its lines (the fields of its statistics class) and how they are
    printed (`rows`, each indented by `indent`)."""

    command: str
    lines: tuple[ShowLine, ...]
    rows: tuple[Row, ...]
    indent: str = "  "

    def line(self, key: str) -> ShowLine:
        for line in self.lines:
            if line.key == key:
                return line
        raise KeyError(key)


SHOW: dict[str, ShowCommand] = {
    # docs/junos-formats.md §4.5 (SRX4700, Junos 25.2)
    "ipsec": ShowCommand("security ipsec statistics", (
        ShowLine("esp_encrypted_bytes", "Encrypted bytes"),
        ShowLine("esp_decrypted_bytes", "Decrypted bytes"),
        ShowLine("esp_encrypted_packets", "Encrypted packets"),
        ShowLine("esp_decrypted_packets", "Decrypted packets"),
        ShowLine("ah_input_bytes", "Input bytes"),
        ShowLine("ah_output_bytes", "Output bytes"),
        ShowLine("ah_input_packets", "Input packets"),
        ShowLine("ah_output_packets", "Output packets"),
        ShowLine("ah_authentication_failures", "AH authentication failures"),
        ShowLine("replay_errors", "Replay errors"),
        ShowLine("esp_authentication_failures", "ESP authentication failures"),
        ShowLine("esp_decryption_failures", "ESP decryption failures"),
        ShowLine("bad_headers", "Bad headers"),
        ShowLine("bad_trailers", "Bad trailers"),
        ShowLine("invalid_spi", "Invalid SPI"),
        ShowLine("ts_check_fail", "TS check fail"),
        ShowLine("exceeds_tunnel_mtu", "Exceeds tunnel MTU"),
        ShowLine("discarded", "Discarded"),
    ), (
        Row(heading="ESP Statistics:"),
        *(Row((key,), style="column") for key in (
            "esp_encrypted_bytes", "esp_decrypted_bytes", "esp_encrypted_packets",
            "esp_decrypted_packets")),
        Row(heading="AH Statistics:"),
        *(Row((key,), style="column") for key in (
            "ah_input_bytes", "ah_output_bytes", "ah_input_packets", "ah_output_packets")),
        Row(heading="Errors:"),
        Row(("ah_authentication_failures", "replay_errors")),
        Row(("esp_authentication_failures", "esp_decryption_failures")),
        Row(("bad_headers", "bad_trailers")),
        Row(("invalid_spi", "ts_check_fail"), srx_only=True),
        Row(("exceeds_tunnel_mtu",), srx_only=True),
        Row(("discarded",), srx_only=True),
    )),
    # docs/junos-formats.md §4.6: the flow module counts the packets of IPsec flows in and
    # out; those an offloaded tunnel carried also as services-offload packets
    "flow": ShowCommand("security flow statistics", (
        ShowLine("current_sessions", "Current sessions"),
        ShowLine("packets_received", "Packets received"),
        ShowLine("packets_transmitted", "Packets transmitted"),
        ShowLine("packets_forwarded_queued", "Packets forwarded/queued",
                 unfed="the model forwards nothing outside its tunnels and queues nothing"),
        ShowLine("packets_copied", "Packets copied", unfed="the model copies no packets"),
        ShowLine("packets_dropped", "Packets dropped"),
        ShowLine("services_offload_packets", "Services-offload packets processed"),
        ShowLine("fragment_packets", "Fragment packets"),
        ShowLine("pre_fragments_generated", "Pre fragments generated"),
        ShowLine("post_fragments_generated", "Post fragments generated",
                 unfed="the model fragments before encryption only (RFC 4301 §8)"),
    ), tuple(Row((key,)) for key in (
        "current_sessions", "packets_received", "packets_transmitted",
        "packets_forwarded_queued", "packets_copied", "packets_dropped",
        "services_offload_packets", "fragment_packets", "pre_fragments_generated",
        "post_fragments_generated")), indent="    "),
}


def counters(scope: str) -> tuple[Counter, ...]:
    """The counters of a scope, in catalogue (and C struct) order."""
    if scope not in SCOPES:
        raise ValueError(f"unknown counter scope {scope!r}: expected one of {SCOPES}")
    return tuple(c for c in COUNTERS if c.scope == scope)


def counter_names(scope: str, gauges: bool = False) -> tuple[str, ...]:
    return tuple(c.name for c in counters(scope) if gauges or not c.gauge)


def drop_names(scope: str) -> tuple[str, ...]:
    return tuple(c.name for c in counters(scope) if c.drop)


def counter_fields(scope: str) -> Callable[[type], type]:
    """A class decorator, applied under `@dataclass`: one field per (non-gauge) counter of
    `scope`, after the class's own fields without defaults and before those with defaults;
    0, or 0.0 for seconds. The class gets `COUNTERS` (the names) and `DROPS`."""

    def add(cls: type) -> type:
        own = dict(cls.__dict__.get("__annotations__", {}))
        required = {k: v for k, v in own.items() if k not in cls.__dict__}
        optional = {k: v for k, v in own.items() if k in cls.__dict__}
        added = {}
        for c in counters(scope):
            if c.gauge:
                continue
            if c.name in own:
                raise TypeError(f"{cls.__name__}.{c.name} is a catalogue counter")
            added[c.name] = "float" if c.unit == "seconds" else "int"
            setattr(cls, c.name, 0.0 if c.unit == "seconds" else 0)
        cls.__annotations__ = {**required, **added, **optional}
        cls.COUNTERS = counter_names(scope)        # type: ignore[attr-defined]
        cls.DROPS = drop_names(scope)              # type: ignore[attr-defined]
        return cls

    return add


def statistics_fields(command: str) -> Callable[[type], type]:
    """A class decorator, applied under `@dataclass`: one int field per line of
    `SHOW[command]`, in its order."""

    def add(cls: type) -> type:
        cls.__annotations__ = {line.key: "int" for line in SHOW[command].lines}
        for line in SHOW[command].lines:
            setattr(cls, line.key, 0)
        return cls

    return add


def _value(source: Any, name: str) -> Any:
    if isinstance(source, Mapping):
        return source.get(name, 0) or 0
    return getattr(source, name, 0) or 0


def statistics(command: str, sources: Iterable[tuple[str, Mapping[str, str], Any]]
               ) -> dict[str, Any]:
    """The lines of `SHOW[command]` summed from `sources`: (scope, qualifiers, counters),
    where qualifiers may name "direction", "protocol" and "engine" and counters is any object
    or mapping with the scope's counter names. Every counter adds to every line it feeds
    whose qualifiers match (`Feed.applies`)."""
    show = SHOW[command]
    total: dict[str, Any] = {line.key: 0 for line in show.lines}
    prefix = command + "."
    by_scope: dict[str, list[tuple[str, str, Feed]]] = {}
    for c in COUNTERS:
        for feed in c.feeds:
            if feed.line.startswith(prefix):
                by_scope.setdefault(c.scope, []).append((c.name, feed.line[len(prefix):], feed))
    for scope, qualifiers, source in sources:
        for name, line, feed in by_scope.get(scope, ()):
            if feed.applies(qualifiers):
                total[line] += _value(source, name)
    return total


def c_declarations(origin: str) -> str:
    """The Cython declarations of the C counter structs (src/_pfe_core/counters.pxd): one
    uint64_t per counter of each scope in `C_STRUCTS`, in catalogue order, and per struct a
    dict view and the layout the compiler chose."""
    out = [f"# Generated by setup.py from {origin}: do not edit, add counters there.",
           "from libc.stdint cimport uint64_t", ""]
    for scope, struct in C_STRUCTS.items():
        names = counter_names(scope)
        out.append(f"ctypedef struct {struct}:")
        for c in counters(scope):
            out.append(f"    uint64_t {c.name}  # {c.description}")
        out += ["", ""]
        view = struct[:-2]   # "sa_counters_t" -> "sa_counters"
        out.append(f"cdef inline dict {view}_dict(const {struct} *c):")
        out.append("    return {")
        out += [f'        "{n}": c.{n},' for n in names]
        out += ["    }", "", ""]
        out.append(f"cdef inline tuple {view}_layout():")
        out.append('    """(sizeof, ((name, byte offset), ...)) as compiled."""')
        out.append(f"    cdef {struct} s")
        out.append(f"    return (sizeof({struct}), (")
        out += [f'        ("{n}", <char *>&s.{n} - <char *>&s),' for n in names]
        out += ["    ))", "", ""]
    return "\n".join(out).rstrip() + "\n"
