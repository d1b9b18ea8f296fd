"""The parts on their own: configuration statements, identity patterns, the suggestion and
configuration payload codecs (hypothesis), next-hop tunnel binding and route resolution."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hub_helpers import HUB, SPOKES, Net, hub_config, make_pki, spoke_config

from inline_ipsec.config import ConfigurationErrors, load_config
from inline_ipsec.config.model import Identity as JunosIdentity
from inline_ipsec.hub.advpn import IdleTracker, Suggestion, SuggestionError
from inline_ipsec.hub.identity import DnError, IdentityPattern, dn_attributes
from inline_ipsec.hub.nhtb import NhtbTable, resolve_routes
from inline_ipsec.ike.auth import Identity
from inline_ipsec.ike.message import decode_message, encode_message, IkeHeader
from inline_ipsec.ike.payloads import CFG_REQUEST, INTERNAL_IP4_ADDRESS, CpPayload

BASE = """set security ike proposal p authentication-method pre-shared-keys
set security ike policy pol proposals p
set security ike policy pol pre-shared-key ascii-text "k"
set security ipsec proposal ip encryption-algorithm aes-256-gcm
set security ipsec policy ipol proposals ip
set interfaces ge-0/0/0 unit 0 family inet address 192.0.2.1/24
set interfaces st0 unit 0 multipoint
set interfaces st0 unit 0 family inet address 10.100.0.1/24
"""


def _two_static_vpns(extra: str = "") -> str:
    lines = [BASE]
    for i, peer in ((1, "198.51.100.1"), (2, "198.51.100.2")):
        lines += [f"set security ike gateway g{i} ike-policy pol",
                  f"set security ike gateway g{i} address {peer}",
                  f"set security ike gateway g{i} external-interface ge-0/0/0.0",
                  f"set security ike gateway g{i} version v2-only",
                  f"set security ipsec vpn v{i} bind-interface st0.0",
                  f"set security ipsec vpn v{i} ike gateway g{i}",
                  f"set security ipsec vpn v{i} ike ipsec-policy ipol"]
    return "\n".join(lines) + "\n" + extra


def test_next_hop_tunnel_statements_and_resolution() -> None:
    cfg = load_config(_two_static_vpns(
        "set interfaces st0 unit 0 family inet next-hop-tunnel 10.100.0.2 ipsec-vpn v1\n"
        "set interfaces st0 unit 0 family inet next-hop-tunnel 10.100.0.3 ipsec-vpn v2\n"
        "set routing-options static route 10.50.0.0/16 next-hop 10.100.0.2\n"
        "set routing-options static route 10.50.2.0/24 next-hop 10.100.0.3\n"
        "set routing-options static route 10.60.0.0/16 next-hop st0.0\n"))
    assert cfg.st0_units[0].next_hop_tunnels == (("10.100.0.2", "v1"), ("10.100.0.3", "v2"))
    nhtb = NhtbTable(cfg)
    routes, unresolved = resolve_routes(cfg, nhtb, {})
    assert routes == []                          # static entries without tunnels: down
    assert any("10.50.0.0/16" in u for u in unresolved)
    nhtb.bind_static("v1", "v1", 1, "")
    nhtb.bind_static("v2", "v2", 2, "")
    routes, unresolved = resolve_routes(cfg, nhtb, {"v1": ["v1"], "v2": ["v2"]})
    # overlapping prefixes, told apart by their next hops; a bare st0.0 route with two VPNs
    # on the multipoint unit reaches no particular tunnel and says so
    assert dict(routes) == {"10.50.0.0/16": ["v1"], "10.50.2.0/24": ["v2"]}
    assert unresolved and "multipoint" in unresolved[0]


@pytest.mark.parametrize("text, message", [
    ("set interfaces st0 unit 0 family inet next-hop-tunnel 10.100.0.2 ipsec-vpn nope\n",
     "'nope' is not defined"),
    ("set interfaces st0 unit 1 family inet next-hop-tunnel 10.100.0.2 ipsec-vpn v1\n",
     "needs 'set interfaces st0 unit 1 multipoint'"),
    ("set security ike gateway g1 dynamic hostname a.example\n", "exclude each other"),
])
def test_configuration_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigurationErrors) as exc:
        load_config(_two_static_vpns(text))
    assert message in str(exc.value)


def test_advpn_partner_options_and_roles() -> None:
    text = spoke_config(1, idle_time=120, idle_threshold=7, connection_limit=3)
    g = load_config(text).ike_gateways["hub"]
    assert (g.advpn_idle_time, g.advpn_idle_threshold, g.advpn_connection_limit) == (120, 7, 3)
    assert g.advpn_partner and not g.advpn_suggester
    h = load_config(hub_config(limit=5)).ike_gateways["spokes"]
    assert h.advpn_suggester and not h.advpn_partner and h.dynamic_connections_limit == 5
    with pytest.raises(ConfigurationErrors):
        load_config(text.replace("idle-time 120", "idle-time 5"))


def test_identity_patterns() -> None:
    host = IdentityPattern.from_junos(JunosIdentity("hostname", "*.Spokes.example"))
    assert host.matches(Identity.parse("@a.spokes.EXAMPLE"))
    assert not host.matches(Identity.parse("@a.other.example"))
    assert not host.matches(Identity.parse("192.0.2.1"))
    user = IdentityPattern.from_junos(JunosIdentity("user-at-hostname", "*@branch.example"))
    assert user.matches(Identity.parse("ops@branch.example"))
    dn = Identity.parse("C=US, O=Example, OU=Spokes, CN=s1")
    wild = IdentityPattern.from_junos(JunosIdentity("distinguished-name",
                                                    "wildcard CN=*, O=Example"))
    cont = IdentityPattern.from_junos(JunosIdentity("distinguished-name",
                                                    "container O=Example, CN=s1"))
    assert wild.matches(dn) and cont.matches(dn)
    assert not IdentityPattern.from_junos(JunosIdentity(
        "distinguished-name", "container CN=s1, O=Example")).matches(dn)     # order
    assert dn != IdentityPattern("hostname", "x") and dn == wild           # as IKE compares


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_dn_parser_never_crashes(data: bytes) -> None:
    try:
        dn_attributes(data)
    except DnError:
        pass


_addr4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
_addr6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
_prefix = st.one_of(
    st.tuples(_addr4, st.integers(0, 32)).map(
        lambda t: str(ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False))),
    st.tuples(_addr6, st.integers(0, 128)).map(
        lambda t: str(ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False))))
_suggestions = st.builds(
    Suggestion, st.integers(0, 2**32 - 1), st.booleans(), st.one_of(_addr4, _addr6),
    st.integers(0, 65535), st.integers(1, 12), st.binary(max_size=64),
    st.one_of(st.none(), _addr4, _addr6), st.lists(_prefix, max_size=8).map(tuple))


@given(_suggestions)
@settings(max_examples=200, deadline=None)
def test_suggestion_round_trip(s: Suggestion) -> None:
    assert Suggestion.decode(s.encode()) == s


@given(_suggestions, st.data())
@settings(max_examples=300, deadline=None)
def test_suggestion_damaged_is_rejected_or_decodes(s: Suggestion, data) -> None:
    raw = bytearray(s.encode())
    cut = data.draw(st.integers(0, len(raw)))
    if data.draw(st.booleans()) and raw:
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
        blob = bytes(raw)
    else:
        blob = bytes(raw[:cut])
    try:
        Suggestion.decode(blob)
    except SuggestionError:
        pass


def test_suggestion_rejects_host_bits_and_trailing_bytes() -> None:
    good = Suggestion(1, True, "198.51.100.1", 500, 2, b"s.example", "10.100.0.2",
                      ("10.1.0.0/16",)).encode()
    with pytest.raises(SuggestionError, match="trailing"):
        Suggestion.decode(good + b"\x00")
    with pytest.raises(SuggestionError, match="host bits"):
        Suggestion.decode(good[:-2] + b"\x00\x01")
    with pytest.raises(SuggestionError, match="version"):
        Suggestion.decode(b"\x02" + good[1:])


def test_configuration_payload_on_the_wire() -> None:
    """CP(CFG_REQUEST) with INTERNAL_IP4_ADDRESS (RFC 7296 §3.15), decoded by scapy too."""
    cp = CpPayload(CFG_REQUEST, [(INTERNAL_IP4_ADDRESS, bytes([10, 100, 0, 11]))])
    hdr = IkeHeader(b"\x01" * 8, b"\x02" * 8, 0, 37, 0x08, 1)
    wire = encode_message(hdr, [cp])
    assert decode_message(wire).payloads == [cp]
    from scapy.contrib.ikev2 import IKEv2
    pkt = IKEv2(wire)
    layer = pkt.getlayer("IKEv2_CP")
    assert layer is not None and layer.CFGType == CFG_REQUEST
    assert bytes([10, 100, 0, 11]) in bytes(layer)


def test_idle_tracker() -> None:
    t = IdleTracker(60, 5, now=0.0)
    assert not t.sample(10.0, 100)           # 10 pps
    assert not t.sample(50.0, 110)           # below since 10 s
    assert t.sample(71.0, 111)               # 61 s below 5 pps


def test_overlapping_spoke_prefixes_resolved_by_nhtb() -> None:
    """Two spokes both behind 10.50.0.0/16: the hub's routes name the next hop of each part,
    and NHTB (learned from their configuration payloads) sends each to its own tunnel."""
    pki = make_pki()
    net = Net()
    text = hub_config(routes=False) + (
        f"set routing-options static route 10.50.0.0/16 next-hop {SPOKES[0][1]}\n"
        f"set routing-options static route 10.50.7.0/24 next-hop {SPOKES[1][1]}\n")
    hub = net.add("hub", text, HUB, pki.issue("hub", "hub.example"), pki.ca)
    spokes = [net.add(f"s{i}", spoke_config(i, advpn=False), SPOKES[i - 1][0],
                      pki.issue(f"s{i}", f"spoke{i}.spokes.example"), pki.ca) for i in (1, 2)]
    for s in spokes:
        s.ctl.start(net.now)
    net.pump()
    from inline_ipsec.gateway.traffic import udp_packet
    out = hub.gw.outbound([udp_packet("10.1.0.1", "10.50.7.9", b"x"),
                           udp_packet("10.1.0.1", "10.50.8.9", b"y")])
    dst = [str(ipaddress.IPv4Address(p[16:20])) for p in out.wire]
    assert dst == [SPOKES[1][0], SPOKES[0][0]]


def _ike_with_suggestion() -> tuple[bytes, Suggestion]:
    from inline_ipsec.hub.advpn import SHORTCUT_SUGGESTION
    from inline_ipsec.ike.payloads import CFG_SET, NotifyPayload
    sug = Suggestion(7, True, "198.51.100.12", 500, 2, b"spoke2.spokes.example",
                     "10.100.0.12", ("10.2.0.0/16",))
    hdr = IkeHeader(b"\x01" * 8, b"\x02" * 8, 0, 37, 0x08, 2)
    return encode_message(hdr, [NotifyPayload(SHORTCUT_SUGGESTION, sug.encode()),
                                CpPayload(CFG_SET, [(INTERNAL_IP4_ADDRESS,
                                                     bytes([10, 100, 0, 11]))])]), sug


def test_suggestion_notify_decoded_by_scapy_and_tshark(tmp_path) -> None:
    """The suggestion (as the plaintext of the INFORMATIONAL) and a CFG_SET, read by scapy
    and by Wireshark's dissector: a private-use status notify, protocol 0, no SPI."""
    import shutil
    import subprocess

    from helpers import missing
    from scapy.all import IP, UDP, Raw, wrpcap
    from scapy.contrib.ikev2 import IKEv2
    wire, sug = _ike_with_suggestion()
    n = IKEv2(wire).getlayer("IKEv2_Notify")
    assert n is not None and n.type == 45056 and n.proto == 0 and n.SPIsize == 0
    assert Suggestion.decode(bytes(n.notify)) == sug
    cp = IKEv2(wire).getlayer("IKEv2_CP")
    assert cp is not None and cp.CFGType == 3
    tshark = shutil.which("tshark")
    if tshark is None:
        missing("tshark is not installed (apt-get install tshark)")
    pcap = tmp_path / "suggestion.pcap"
    wrpcap(str(pcap), [IP(src="192.0.2.1", dst="198.51.100.11") / UDP(sport=500, dport=500)
                       / Raw(wire)])
    out = subprocess.run([tshark, "-r", str(pcap), "-V", "-O", "isakmp"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "Notify Message Type: Private Use - STATUS TYPES (45056)" in out
    assert "Type: CFG_SET (3)" in out and "INTERNAL IP4 ADDRESS: 10.100.0.11" in out
    assert "Malformed" not in out


@given(st.integers(2, 255), st.binary(min_size=0, max_size=40))
@settings(max_examples=200, deadline=None)
def test_forwarding_decrements_ttl_and_keeps_the_checksum_right(ttl: int, body: bytes) -> None:
    from scapy.layers.inet import IP

    from inline_ipsec.packet.ip import forwarded as _hop
    pkt = bytes(IP(src="10.1.0.5", dst="10.2.0.5", ttl=ttl, proto=17) / body)
    out = _hop(pkt)
    assert out is not None
    again = IP(out)
    assert again.ttl == ttl - 1
    del again.chksum
    assert IP(bytes(again)).chksum == IP(out).chksum      # scapy recomputes the same
    assert _hop(bytes(IP(dst="10.2.0.5", ttl=1))) is None


def test_vpns_hub_control_does_not_run_are_reported() -> None:
    from inline_ipsec.gateway import Gateway
    from inline_ipsec.hub.control import HubControl
    text = _two_static_vpns().replace("set interfaces st0 unit 0 multipoint\n", "")
    text += "set interfaces st0 unit 0 family inet\n"
    ctl = HubControl(Gateway(load_config(text)))
    assert set(ctl.unsupported) == {"v1", "v2"} and ctl.vpns == {}
    assert "IkeControl negotiates it" in ctl.show("security ipsec security-associations")


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_configuration_payload_decoder_is_bounded(body: bytes) -> None:
    """Any bytes: a CpPayload or INVALID_SYNTAX (RFC 7296 §3.15 lengths are checked)."""
    from inline_ipsec.ike.errors import RemoteIkeError
    try:
        cp = CpPayload.decode(body)
    except RemoteIkeError:
        return
    assert CpPayload.decode(cp.encode_body()) == cp
