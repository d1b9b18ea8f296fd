"""`PolicyTable`: first-match order (zone pair, then global, then default), and the flat
arrays a C kernel would walk give the same decision as `match` (hypothesis)."""
from __future__ import annotations

import ipaddress
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from inline_ipsec.config import load_config, load_config_file
from inline_ipsec.policy import Action, FiveTuple, PolicyTable

CONFIGS = Path(__file__).parent.parent / "data" / "configs"


def walk_arrays(t: PolicyTable, fz: str, tz: str, ft: FiveTuple) -> tuple[int, int]:
    """(action, policy index or -1) from `arrays()` alone, as a C loop would."""
    a = t.arrays()
    nz = len(t.zones)
    fi, ti = t.zones.index(fz), t.zones.index(tz)
    ctx = fi * nz + ti
    s, d = int(ft.src), int(ft.dst)
    for r in a["ctx_rules"][a["ctx_off"][ctx]:a["ctx_off"][ctx + 1]]:
        def inside(side: str, x: int) -> bool:
            if ft.version == 4:
                o = a[f"{side}4_off"]
                return any(int(a[f"{side}4_lo"][k]) <= x <= int(a[f"{side}4_hi"][k])
                           for k in range(o[r], o[r + 1]))
            o = a[f"{side}6_off"]
            for k in range(o[r], o[r + 1]):
                lo = (int(a[f"{side}6_lo_hi"][k]) << 64) | int(a[f"{side}6_lo_lo"][k])
                hi = (int(a[f"{side}6_hi_hi"][k]) << 64) | int(a[f"{side}6_hi_lo"][k])
                if lo <= x <= hi:
                    return True
            return False
        if not inside("src", s) or not inside("dst", d):
            continue
        ok = False
        for k in range(a["app_off"][r], a["app_off"][r + 1]):
            proto = int(a["app_proto"][k])
            if proto >= 0 and proto != ft.protocol:
                continue
            full = (a["app_sport_lo"][k], a["app_sport_hi"][k], a["app_dport_lo"][k],
                    a["app_dport_hi"][k]) == (0, 65535, 0, 65535)
            if not full and (ft.sport is None or not (
                    a["app_sport_lo"][k] <= ft.sport <= a["app_sport_hi"][k]
                    and a["app_dport_lo"][k] <= ft.dport <= a["app_dport_hi"][k])):
                continue
            it = int(a["app_icmp_type"][k])
            if it >= 0 and it != ft.icmp_type:
                continue
            ok = True
            break
        if ok:
            return int(a["rule_action"][r]), int(a["rule_policy"][r])
    return int(a["default_action"][0]), -1


HQ = PolicyTable(load_config_file(CONFIGS / "hq-policy-based.conf").firewall)
ADDRS = ["10.20.1.5", "10.20.9.15", "10.20.9.21", "10.10.3.3", "192.0.2.80", "8.8.8.8",
         "2001:db8::1"]


@settings(max_examples=300, deadline=None)
@given(fz=st.sampled_from(HQ.zones), tz=st.sampled_from(HQ.zones),
       src=st.sampled_from(ADDRS), dst=st.sampled_from(ADDRS),
       proto=st.sampled_from([1, 6, 17, 58]), dport=st.sampled_from([0, 443, 5060, 8443,
                                                                     20000, 40000]),
       icmp=st.sampled_from([None, 0, 8]))
def test_arrays_decide_as_match(fz, tz, src, dst, proto, dport, icmp) -> None:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version != d.version:
        return
    ports = proto in (6, 17)
    ft = FiveTuple(s, d, proto, 1024 if ports else None, dport if ports else None,
                   icmp if not ports else None)
    dec = HQ.match(fz, tz, ft)
    assert walk_arrays(HQ, fz, tz, ft) == (int(dec.action), dec.index)


def ft4(src: str, dst: str, proto: int = 17, dport: int = 53) -> FiveTuple:
    return FiveTuple(ipaddress.ip_address(src), ipaddress.ip_address(dst), proto, 999, dport)


def test_first_match_zone_pair_then_global_then_default() -> None:
    t = HQ
    d = t.match("trust", "untrust", ft4("10.20.1.5", "10.10.0.9"))
    assert (d.policy, d.tunnel, d.action) == ("vpn-out", "vpn-branch", Action.PERMIT)
    d = t.match("trust", "untrust", ft4("10.20.2.5", "8.8.8.8"))
    assert d.policy == "internet"
    d = t.match("trust", "trust", FiveTuple(ipaddress.ip_address("192.0.2.80"),
                                            ipaddress.ip_address("10.20.1.1"), 1, None, None, 8))
    assert d.policy == "monitoring"               # global policy, from-zone trust
    d = t.match("untrust", "trust", ft4("10.10.0.9", "10.20.1.5", 6, 22))
    assert d.action == Action.DENY and d.reason == "default policy"
    d = t.match("untrust", "trust", ft4("10.10.0.9", "10.20.1.5", 17, 5060))
    assert d.policy == "vpn-in"                    # voip-rtp term sip
    d = t.match("untrust", "trust", ft4("10.10.0.9", "10.20.9.15", 6, 8443))
    assert d.policy is None                         # hq-printers not in vpn-in's hq-servers
    d = t.match(None, "trust", ft4("10.10.0.9", "10.20.1.5"))
    assert d.action == Action.DENY and "no security zone" in d.reason


def test_default_permit_and_reject() -> None:
    c = load_config("set security zones security-zone a interfaces ge-0/0/0.0\n"
                    "set security policies default-policy permit-all\n"
                    "set security policies from-zone a to-zone a policy r match "
                    "source-address any\n"
                    "set security policies from-zone a to-zone a policy r match "
                    "destination-address any-ipv6\n"
                    "set security policies from-zone a to-zone a policy r match application any\n"
                    "set security policies from-zone a to-zone a policy r then reject\n")
    t = PolicyTable(c.firewall)
    assert t.match("a", "a", ft4("10.0.0.1", "10.0.0.2")).action == Action.PERMIT
    six = FiveTuple(ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("2001:db8::2"),
                    17, 1, 2)
    assert t.lookup("a", "a", six).action == Action.REJECT and t.hits == [1]


from hypothesis import HealthCheck  # noqa: E402

from inline_ipsec.policy import five_tuple  # noqa: E402
from inline_ipsec.policy.packet import session_keys  # noqa: E402


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=120), version=st.sampled_from([0x45, 0x46, 0x60, 0x4f, 0x00]))
def test_packet_readers_never_raise_and_agree(data: bytes, version: int) -> None:
    pkt = bytes([version]) + data
    ft, keys = five_tuple(pkt), session_keys(pkt)
    assert (ft is None) == (keys is None)
    if keys is not None:
        fwd, rev = keys
        half = (len(fwd) - 5) // 2
        assert rev[:half] == fwd[half:2 * half] and rev[half:2 * half] == fwd[:half]


@given(sport=st.integers(0, 65535), dport=st.integers(0, 65535))
def test_reply_keys_mirror_request_keys(sport: int, dport: int) -> None:
    from inline_ipsec.gateway.traffic import udp_packet
    req = session_keys(udp_packet("10.0.0.1", "10.0.0.2", b"x", sport, dport))
    rep = session_keys(udp_packet("10.0.0.2", "10.0.0.1", b"y", dport, sport))
    assert req is not None and rep is not None
    assert req[0] == rep[1] and req[1] == rep[0]
